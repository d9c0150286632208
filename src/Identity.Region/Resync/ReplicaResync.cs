using System.Net.Http.Json;
using System.Text.Json;
using Identity.Contracts;
using Identity.Region.Replica;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Identity.Region.Resync;

/// <summary>What a complete resync did.</summary>
public sealed record ReplicaResyncResult(int Users, int Pages, int Applied, int Removed);

/// <summary>Rebuilds the replica from Identity's sync API; used at first start and on demand.</summary>
public interface IReplicaResync
{
    Task<ReplicaResyncResult> RunAsync(CancellationToken cancellationToken = default);
}

/// <summary>
/// Pages through <c>GET /sync/v1/regions/{region}/users</c> with a client-credentials token (the HttpClient's
/// <see cref="Tokens.IdentityAccessTokenHandler"/>) and applies every
/// snapshot through <see cref="ReplicaWriter"/> (so an event newer than the page wins), then removes the users
/// Identity no longer has for this region.
/// </summary>
public sealed class ReplicaResync(
    HttpClient http,
    RegionReplicaDbContext db,
    ReplicaWriter writer,
    ResyncGate gate,
    IOptions<IdentityRegionOptions> options,
    TimeProvider time,
    ILogger<ReplicaResync> logger) : IReplicaResync
{
    /// <summary>The token client (<see cref="Tokens.IdentityTokenClient"/>) whose tokens the resync presents.</summary>
    public const string TokenClientName = "identity-region-sync";

    private IdentityRegionOptions Options => options.Value;

    public async Task<ReplicaResyncResult> RunAsync(CancellationToken cancellationToken = default)
    {
        // One resync at a time in this process: an on-demand run waits for the start-up one.
        await gate.Semaphore.WaitAsync(cancellationToken);
        try
        {
            return await RunExclusiveAsync(cancellationToken);
        }
        finally
        {
            gate.Semaphore.Release();
        }
    }

    private async Task<ReplicaResyncResult> RunExclusiveAsync(CancellationToken cancellationToken)
    {
        var startedAt = time.GetUtcNow().UtcDateTime;
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var (pages, applied) = (0, 0);
        string? cursor = null;

        do
        {
            var page = await GetPageAsync(cursor, cancellationToken);
            pages++;
            seen.UnionWith(page.Users.Select(u => u.UserId));
            // A page is one transaction.
            applied += (await writer.ApplyAsync(page.Users, cancellationToken)).Count(o => o == ReplicaOutcome.Applied);

            if (page.Next is not null && page.Next == cursor)
            {
                throw new InvalidOperationException($"The sync API returned the cursor '{cursor}' twice; the resync stopped.");
            }

            cursor = page.Next;
        }
        while (cursor is not null);

        var removed = await RemoveAbsentAsync(seen, startedAt, cancellationToken);
        await RecordAsync(seen.Count, cancellationToken);
        logger.LogInformation("Replica resync for region {Region}: {Users} users in {Pages} pages, {Applied} applied, {Removed} removed.",
            Options.Region, seen.Count, pages, applied, removed);
        return new ReplicaResyncResult(seen.Count, pages, applied, removed);
    }

    /// <summary>
    /// The sync was complete, so a live replica user it did not list no longer exists for this region — unless an
    /// event wrote the row after the sync started (a user created meanwhile may sit in a page already read). Such a
    /// user is tombstoned with its stored version, and only if that version is still the one read here: the
    /// conditional update leaves alone whatever an event changed in between.
    /// </summary>
    private async Task<int> RemoveAbsentAsync(HashSet<string> seen, DateTime startedAt, CancellationToken cancellationToken)
    {
        var candidates = await db.ReplicaUsers.AsNoTracking()
            .Where(u => !u.Deleted && u.UpdatedAt < startedAt)
            .Select(u => new { u.UserId, u.Version })
            .ToListAsync(cancellationToken);

        var removed = 0;
        foreach (var user in candidates.Where(u => !seen.Contains(u.UserId)))
        {
            if (await writer.TombstoneAbsentAsync(user.UserId, user.Version, startedAt, cancellationToken))
            {
                removed++;
            }
        }

        return removed;
    }

    private async Task RecordAsync(int users, CancellationToken cancellationToken)
    {
        var state = await db.ReplicaState.SingleOrDefaultAsync(s => s.Id == ReplicaState.SingletonId, cancellationToken);
        if (state is null)
        {
            state = new ReplicaState();
            db.ReplicaState.Add(state);
        }

        state.LastFullResyncAt = time.GetUtcNow().UtcDateTime;
        state.LastFullResyncUsers = users;
        await db.SaveChangesAsync(cancellationToken);
    }

    /// <summary>A page; the token (and one new one on a 401) comes from the HttpClient's access-token handler.</summary>
    private async Task<UserPage> GetPageAsync(string? cursor, CancellationToken cancellationToken)
    {
        var query = $"limit={Options.PageSize}" + (cursor is null ? "" : $"&after={Uri.EscapeDataString(cursor)}");
        var uri = new Uri(Authority, $"sync/v1/regions/{Uri.EscapeDataString(Options.Region)}/users?{query}");

        using var response = await http.GetAsync(uri, cancellationToken);
        if (!response.IsSuccessStatusCode)
        {
            throw new HttpRequestException($"The sync API answered {(int)response.StatusCode} for {uri.AbsolutePath}.", null, response.StatusCode);
        }

        return await response.Content.ReadFromJsonAsync<UserPage>(JsonSerializerOptions.Web, cancellationToken)
            ?? throw new InvalidOperationException("The sync API returned an empty body.");
    }

    /// <summary>The authority with a trailing slash, so relative paths append to it.</summary>
    private Uri Authority => Options.Authority!.AbsoluteUri.EndsWith('/') ? Options.Authority : new Uri(Options.Authority.AbsoluteUri + "/");
}

/// <summary>Serialises resyncs within the process (a singleton).</summary>
public sealed class ResyncGate : IDisposable
{
    public SemaphoreSlim Semaphore { get; } = new(1, 1);

    public void Dispose() => Semaphore.Dispose();
}
