using System.Globalization;
using System.Text.Json;
using Identity.Core.Data;
using Microsoft.EntityFrameworkCore;

namespace Identity.Server.Admin;

public sealed record AuditView(long Id, DateTimeOffset At, string EventType, string ActorType, string? ActorId, string? ClientId,
    string? IpAddress, string? SubjectType, string? SubjectId, Guid? AccountId, JsonElement? Details);

/// <summary>
/// The audit trail, newest first: platform administrators see everything, account admins only their own
/// account's entries. Filters: time range, actor, subject, event type.
/// </summary>
public static class AuditApi
{
    public static RouteGroupBuilder MapAuditApi(this RouteGroupBuilder admin)
    {
        admin.MapGet("/audit", QueryAsync).WithTags("Audit");
        return admin;
    }

    private static async Task<IResult> QueryAsync(HttpContext context, AuthorityDbContext db,
        string? from, string? to, string? actor, string? subject, string? type, string? after, int? limit)
    {
        var errors = new Dictionary<string, string[]>();
        var since = ParseTime(from, "from", errors);
        var until = ParseTime(to, "to", errors);
        long? cursor = null;
        if (!AdminHttp.TryDecodeCursor(after, out var key) || (key is not null && !long.TryParse(key, CultureInfo.InvariantCulture, out _)))
        {
            errors["after"] = ["The cursor is not valid."];
        }
        else if (key is not null)
        {
            cursor = long.Parse(key, CultureInfo.InvariantCulture);
        }

        if (limit is < 1 or > 200)
        {
            errors["limit"] = ["Between 1 and 200."];
        }

        if (errors.Count > 0)
        {
            return AdminHttp.Invalid(errors);
        }

        var caller = context.Admin();
        var query = db.AuditEntries.AsNoTracking();
        if (!caller.IsPlatformAdmin)
        {
            query = query.Where(e => e.AccountId == caller.AccountId);
        }

        if (since is { } s)
        {
            query = query.Where(e => e.At >= s);
        }

        if (until is { } u)
        {
            query = query.Where(e => e.At < u);
        }

        if (!string.IsNullOrEmpty(actor))
        {
            query = query.Where(e => e.ActorId == actor);
        }

        if (!string.IsNullOrEmpty(subject))
        {
            query = query.Where(e => e.SubjectId == subject);
        }

        if (!string.IsNullOrEmpty(type))
        {
            query = query.Where(e => e.EventType == type);
        }

        if (cursor is { } c)
        {
            query = query.Where(e => e.Id < c);
        }

        var take = AdminHttp.ClampLimit(limit);
        var rows = await query.OrderByDescending(e => e.Id).Take(take + 1).ToListAsync(context.RequestAborted);
        var items = rows.Take(take).Select(e => new AuditView(e.Id, e.At, e.EventType, e.ActorType, e.ActorId, e.ClientId, e.IpAddress,
            e.SubjectType, e.SubjectId, e.AccountId, e.Details is null ? null : JsonDocument.Parse(e.Details).RootElement.Clone())).ToList();
        return TypedResults.Ok(new Page<AuditView>(items,
            rows.Count > take ? AdminHttp.EncodeCursor(items[^1].Id.ToString(CultureInfo.InvariantCulture)) : null));
    }

    private static DateTimeOffset? ParseTime(string? value, string field, Dictionary<string, string[]> errors)
    {
        if (value is null)
        {
            return null;
        }

        if (DateTimeOffset.TryParse(value, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var parsed))
        {
            return parsed;
        }

        errors[field] = ["An ISO-8601 date and time, e.g. 2026-11-24T10:00:00Z."];
        return null;
    }
}
