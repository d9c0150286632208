namespace Identity.Core.Audit;

/// <summary>
/// One admin change or security event: who, what, when, from where. Written in the same database transaction as
/// the change it records. Never holds a secret, password, token or recovery code.
/// </summary>
public sealed class AuditEntry
{
    public long Id { get; set; }

    public DateTimeOffset At { get; set; }

    /// <summary>e.g. <c>user.created</c>, <c>client.secret_rotated</c>, <c>signin.failed</c>.</summary>
    public required string EventType { get; set; }

    /// <summary><c>user</c>, <c>client</c> or <c>anonymous</c>.</summary>
    public required string ActorType { get; set; }

    public string? ActorId { get; set; }

    /// <summary>The OAuth client the actor used (the token's <c>client_id</c>).</summary>
    public string? ClientId { get; set; }

    public string? IpAddress { get; set; }

    /// <summary><c>account</c>, <c>user</c>, <c>client</c>, <c>region</c>.</summary>
    public string? SubjectType { get; set; }

    public string? SubjectId { get; set; }

    /// <summary>The account the event concerns, so account admins can see their own trail.</summary>
    public Guid? AccountId { get; set; }

    /// <summary>JSON: before → after for changed fields, or event details. Secrets are never included.</summary>
    public string? Details { get; set; }
}
