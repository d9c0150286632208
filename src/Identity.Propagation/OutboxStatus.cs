using Identity.Core.Data;
using Identity.Core.Propagation;
using Microsoft.EntityFrameworkCore;

namespace Identity.Propagation;

public sealed record RegionBacklog(string Region, int Pending);

public sealed record RegionParked(string Region, int Parked);

/// <summary>One region's queue as the console shows it: waiting rows, the oldest one's time, parked rows.</summary>
public sealed record RegionOutbox(string Region, int Pending, DateTimeOffset? OldestPendingAt, int Parked);

/// <summary>A parked row as the admin API shows it: what, for whom, why; never the payload.</summary>
public sealed record ParkedRow(
    long Id,
    string Region,
    string MessageType,
    Guid? AccountId,
    string? UserId,
    DateTimeOffset CreatedAt,
    DateTimeOffset ParkedAt,
    string Reason,
    int Attempts,
    string? LastError)
{
    public static ParkedRow Of(OutboxMessage row) => new(row.Id, row.Region, row.MessageType, row.AccountId, row.UserId, row.CreatedAt,
        row.ParkedAt ?? default, row.ParkedReason ?? "", row.Attempts, row.LastError);
}

/// <summary>
/// What <c>GET /admin/v1/outbox</c> shows: the backlog, its age and the last failure; the parked rows, per region and
/// the oldest <see cref="ParkedListed"/> of them.
/// </summary>
public sealed record OutboxStatus(
    int Pending,
    DateTimeOffset? OldestPendingAt,
    double? OldestPendingAgeSeconds,
    int Failing,
    string? LastError,
    int SentRetained,
    bool BrokerConfigured,
    IReadOnlyList<RegionBacklog> ByRegion,
    int Parked,
    IReadOnlyList<RegionParked> ParkedByRegion,
    IReadOnlyList<ParkedRow> ParkedRows)
{
    /// <summary>How many parked rows the status lists (the oldest first); the count covers them all.</summary>
    public const int ParkedListed = 100;

    public static async Task<OutboxStatus> ReadAsync(AuthorityDbContext db, TimeProvider time, CancellationToken cancellationToken,
        bool brokerConfigured = false, bool details = false)
    {
        var pending = OutboxQueries.Pending(db);
        var count = await pending.CountAsync(cancellationToken);
        var oldest = count == 0 ? null
            : await OutboxQueries.OldestPending(db, 1).Select(m => (DateTimeOffset?)m.CreatedAt).FirstOrDefaultAsync(cancellationToken);
        var age = oldest is { } at ? Math.Max(0, (time.GetUtcNow() - at).TotalSeconds) : (double?)null;
        var parked = await OutboxQueries.Parked(db).CountAsync(cancellationToken);
        if (!details)
        {
            return new OutboxStatus(count, oldest, age, 0, null, 0, brokerConfigured, [], parked, [], []);
        }

        var failing = await pending.CountAsync(m => m.LastError != null, cancellationToken);
        var lastError = await pending.Where(m => m.LastError != null).OrderByDescending(m => m.Id).Select(m => m.LastError).FirstOrDefaultAsync(cancellationToken);
        var sent = await db.Outbox.CountAsync(m => m.SentAt != null, cancellationToken);
        var byRegion = await pending.GroupBy(m => m.Region).Select(g => new RegionBacklog(g.Key, g.Count())).ToListAsync(cancellationToken);
        List<RegionParked> parkedByRegion = [];
        List<ParkedRow> parkedRows = [];
        if (parked > 0)
        {
            parkedByRegion = await OutboxQueries.Parked(db).GroupBy(m => m.Region).Select(g => new RegionParked(g.Key, g.Count()))
                .ToListAsync(cancellationToken);
            parkedRows = [.. (await OutboxQueries.Parked(db).OrderBy(m => m.Id).Take(ParkedListed).ToListAsync(cancellationToken)).Select(ParkedRow.Of)];
        }

        return new OutboxStatus(count, oldest, age, failing, lastError, sent, brokerConfigured,
            [.. byRegion.OrderBy(r => r.Region, StringComparer.Ordinal)], parked,
            [.. parkedByRegion.OrderBy(r => r.Region, StringComparer.Ordinal)], parkedRows);
    }

    /// <summary>
    /// Every region with waiting or parked rows, by code: how many wait, since when (the oldest by id, as the dispatcher
    /// reads them), how many are parked.
    /// </summary>
    public static async Task<IReadOnlyList<RegionOutbox>> ByRegionAsync(AuthorityDbContext db, CancellationToken cancellationToken)
    {
        // The oldest row by id, not by time: SQLite cannot order or aggregate DateTimeOffset, and ids follow creation.
        var pending = await OutboxQueries.Pending(db).GroupBy(m => m.Region)
            .Select(g => new { Region = g.Key, Count = g.Count(), Oldest = g.Min(m => m.Id) }).ToListAsync(cancellationToken);
        var oldestIds = pending.Select(p => p.Oldest).ToList();
        var oldestAt = await db.Outbox.AsNoTracking().Where(m => oldestIds.Contains(m.Id))
            .Select(m => new { m.Id, m.CreatedAt }).ToDictionaryAsync(m => m.Id, m => m.CreatedAt, cancellationToken);
        var parked = await OutboxQueries.Parked(db).GroupBy(m => m.Region).Select(g => new { Region = g.Key, Count = g.Count() })
            .ToDictionaryAsync(g => g.Region, g => g.Count, StringComparer.Ordinal, cancellationToken);
        var waiting = pending.ToDictionary(p => p.Region, StringComparer.Ordinal);
        return [.. waiting.Keys.Union(parked.Keys).Order(StringComparer.Ordinal).Select(region => waiting.TryGetValue(region, out var p)
            ? new RegionOutbox(region, p.Count, oldestAt.TryGetValue(p.Oldest, out var at) ? at : null, parked.GetValueOrDefault(region))
            : new RegionOutbox(region, 0, null, parked[region]))];
    }

    /// <summary>Parked rows by id after <paramref name="afterId"/>, <paramref name="take"/> of them: a page of the console's list.</summary>
    public static async Task<IReadOnlyList<ParkedRow>> ParkedPageAsync(AuthorityDbContext db, long afterId, int take, CancellationToken cancellationToken) =>
        [.. (await OutboxQueries.Parked(db).Where(m => m.Id > afterId).OrderBy(m => m.Id).Take(take).ToListAsync(cancellationToken)).Select(ParkedRow.Of)];
}
