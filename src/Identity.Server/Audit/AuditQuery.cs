using System.Globalization;
using Identity.Core.Audit;
using Identity.Core.Data;
using Identity.Server.Admin;
using Microsoft.EntityFrameworkCore;

namespace Identity.Server.Audit;

/// <summary>What to look for in the audit trail: a time range (from inclusive, to exclusive), an actor, a subject, an event type.</summary>
public sealed record AuditFilter(DateTimeOffset? From = null, DateTimeOffset? To = null, string? Actor = null, string? Subject = null,
    string? Type = null);

/// <summary>
/// The audit trail as administrators read it, for the admin API and the console alike: newest first, platform
/// administrators see every entry, an account's admins only their own account's.
/// </summary>
public sealed class AuditQuery(AuthorityDbContext db)
{
    public const string TimeFormat = "An ISO-8601 date and time, e.g. 2026-11-24T10:00:00Z.";

    /// <summary>A time as written (UTC unless it says otherwise), or an error under <paramref name="field"/>.</summary>
    public static DateTimeOffset? ParseTime(string? value, string field, Dictionary<string, string[]> errors)
    {
        if (value is null)
        {
            return null;
        }

        if (DateTimeOffset.TryParse(value, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var parsed))
        {
            return parsed;
        }

        errors[field] = [TimeFormat];
        return null;
    }

    /// <summary>One page of entries the caller may see, older than the entry <paramref name="beforeId"/>; <c>More</c> when another page follows.</summary>
    public async Task<(IReadOnlyList<AuditEntry> Items, bool More)> ReadAsync(AdminActor caller, AuditFilter filter, long? beforeId, int take,
        CancellationToken cancellationToken)
    {
        var query = db.AuditEntries.AsNoTracking();
        if (!caller.IsPlatformAdmin)
        {
            query = query.Where(e => e.AccountId == caller.AccountId);
        }

        if (filter.From is { } s)
        {
            query = query.Where(e => e.At >= s);
        }

        if (filter.To is { } u)
        {
            query = query.Where(e => e.At < u);
        }

        if (!string.IsNullOrEmpty(filter.Actor))
        {
            query = query.Where(e => e.ActorId == filter.Actor);
        }

        if (!string.IsNullOrEmpty(filter.Subject))
        {
            query = query.Where(e => e.SubjectId == filter.Subject);
        }

        if (!string.IsNullOrEmpty(filter.Type))
        {
            query = query.Where(e => e.EventType == filter.Type);
        }

        if (beforeId is { } c)
        {
            query = query.Where(e => e.Id < c);
        }

        var rows = await query.OrderByDescending(e => e.Id).Take(take + 1).ToListAsync(cancellationToken);
        return ([.. rows.Take(take)], rows.Count > take);
    }
}
