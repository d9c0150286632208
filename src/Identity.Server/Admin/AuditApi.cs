using System.Globalization;
using System.Text.Json;
using Identity.Server.Audit;

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

    private static async Task<IResult> QueryAsync(HttpContext context, AuditQuery audit,
        string? from, string? to, string? actor, string? subject, string? type, string? after, int? limit)
    {
        var errors = new Dictionary<string, string[]>();
        var since = AuditQuery.ParseTime(from, "from", errors);
        var until = AuditQuery.ParseTime(to, "to", errors);
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

        var (rows, more) = await audit.ReadAsync(context.Admin(), new AuditFilter(since, until, actor, subject, type), cursor,
            AdminHttp.ClampLimit(limit), context.RequestAborted);
        var items = rows.Select(e => new AuditView(e.Id, e.At, e.EventType, e.ActorType, e.ActorId, e.ClientId, e.IpAddress,
            e.SubjectType, e.SubjectId, e.AccountId, e.Details is null ? null : JsonDocument.Parse(e.Details).RootElement.Clone())).ToList();
        return TypedResults.Ok(new Page<AuditView>(items, more ? AdminHttp.EncodeCursor(items[^1].Id.ToString(CultureInfo.InvariantCulture)) : null));
    }
}
