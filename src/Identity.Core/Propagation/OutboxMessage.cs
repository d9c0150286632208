namespace Identity.Core.Propagation;

/// <summary>
/// One event for one region, written in the same database transaction as the change it describes (transactional
/// outbox). The dispatcher publishes pending rows in <see cref="Id"/> order and sets <see cref="SentAt"/> only after
/// the broker confirmed; sent rows are deleted after a retention period.
/// </summary>
public sealed class OutboxMessage
{
    /// <summary>Database-generated, increasing: the publication order.</summary>
    public long Id { get; set; }

    /// <summary>The region code the event is for; the dispatcher routes it to that region only.</summary>
    public required string Region { get; set; }

    /// <summary>The contract name, e.g. <c>UserChanged</c>.</summary>
    public required string MessageType { get; set; }

    /// <summary>The contract serialized as JSON.</summary>
    public required string Payload { get; set; }

    public Guid? AccountId { get; set; }

    /// <summary>The user the event is about, when it is about one.</summary>
    public string? UserId { get; set; }

    public DateTimeOffset CreatedAt { get; set; }

    public DateTimeOffset? SentAt { get; set; }

    public int Attempts { get; set; }

    /// <summary>The last publish failure (exception type and message; never the payload).</summary>
    public string? LastError { get; set; }
}

/// <summary>
/// A named lease in the database: the replica holding it (until <see cref="ExpiresAt"/>) is the one that dispatches,
/// so several server replicas never publish the same rows at once and the order is kept.
/// </summary>
public sealed class OutboxLease
{
    public required string Name { get; set; }

    public string? Owner { get; set; }

    public DateTimeOffset ExpiresAt { get; set; }
}
