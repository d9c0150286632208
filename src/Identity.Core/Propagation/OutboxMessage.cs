namespace Identity.Core.Propagation;

/// <summary>
/// One event for one region, written in the same database transaction as the change it describes (transactional
/// outbox). The dispatcher publishes pending rows in <see cref="Id"/> order and sets <see cref="SentAt"/> only after
/// the broker confirmed; sent rows are deleted after a retention period. A row that cannot be published is parked
/// (<see cref="ParkedAt"/>) until a platform administrator re-queues it; the rows behind it go on.
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

    /// <summary>
    /// The row's own failed publications: rounds in which the broker confirmed other rows but not this one. A broker
    /// that is down fails every row alike and counts against none (only <see cref="LastError"/> says it).
    /// </summary>
    public int Attempts { get; set; }

    /// <summary>The last publish failure (exception type and message; never the payload).</summary>
    public string? LastError { get; set; }

    /// <summary>When the row was parked (dead-lettered): the dispatcher no longer reads it; null while it is pending.</summary>
    public DateTimeOffset? ParkedAt { get; set; }

    /// <summary>Why it was parked: one of <see cref="ParkReasons"/>.</summary>
    public string? ParkedReason { get; set; }

    /// <summary>
    /// The W3C Trace Context <c>traceparent</c> of the change that wrote the row (<see cref="OutboxTrace"/>): the
    /// dispatcher, in another thread or replica and later, sends the row as part of that trace (decision 0084).
    /// </summary>
    public string? TraceParent { get; set; }

    /// <summary>The change's W3C <c>tracestate</c>, when it had one (at most <see cref="OutboxTrace.TraceStateMaxLength"/> characters).</summary>
    public string? TraceState { get; set; }
}

/// <summary>Why a row was parked.</summary>
public static class ParkReasons
{
    /// <summary>No contract has the row's <see cref="OutboxMessage.MessageType"/> (e.g. written by a newer version).</summary>
    public const string UnknownType = "unknown_type";

    /// <summary>The payload is not a readable instance of its contract.</summary>
    public const string UnreadablePayload = "unreadable_payload";

    /// <summary>Its publication failed <c>Outbox:MaxAttempts</c> times while the broker accepted other rows.</summary>
    public const string AttemptsExhausted = "attempts_exhausted";
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
