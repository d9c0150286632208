using System.Text.Json;
using Identity.Core.Data;
using Identity.Core.Operations;

namespace Identity.Core.Audit;

/// <summary>Who did something: a person (with the client they used) or a client acting for itself.</summary>
public sealed record Actor(string Type, string? Id, string? ClientId, string? IpAddress)
{
    public static Actor Anonymous(string? ipAddress) => new("anonymous", null, null, ipAddress);
}

/// <summary>
/// Adds audit entries to the current unit of work: they are saved by the same <c>SaveChanges</c>, inside the same
/// transaction, as the change they record — both or neither.
/// </summary>
public interface IAuditTrail
{
    void Record(Actor actor, string eventType, string? subjectType, string? subjectId, Guid? accountId, object? details = null);
}

public sealed class AuditTrail(AuthorityDbContext db, TimeProvider time) : IAuditTrail
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    public void Record(Actor actor, string eventType, string? subjectType, string? subjectId, Guid? accountId, object? details = null) =>
        ChangeUnit.Record(db, new AuditEntry // written with the operation's change, if one runs (Change.Rows)
        {
            At = time.GetUtcNow(),
            EventType = eventType,
            ActorType = actor.Type,
            ActorId = actor.Id,
            ClientId = actor.ClientId,
            IpAddress = actor.IpAddress,
            SubjectType = subjectType,
            SubjectId = subjectId,
            AccountId = accountId,
            Details = details is null ? null : JsonSerializer.Serialize(details, Json),
        });
}
