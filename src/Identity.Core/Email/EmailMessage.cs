namespace Identity.Core.Email;

/// <summary>
/// One email waiting to be sent, written in the same transaction as the change that causes it (an outbox for mail): a
/// mail server that is slow or down delays it, never the request, and a restart loses nothing. The worker sends due rows
/// (<see cref="NextAttemptAt"/>), retrying with back-off; a sent row keeps no body.
/// </summary>
public sealed class EmailMessage
{
    /// <summary>Database-generated, increasing: the sending order.</summary>
    public long Id { get; set; }

    public required string To { get; set; }

    public required string Subject { get; set; }

    /// <summary>
    /// The plain-text and HTML bodies, protected with the server's data-protection ring: they carry single-use links,
    /// which must not be readable from the database (the links themselves are stored only as hashes). Emptied once sent.
    /// </summary>
    public required string ProtectedBody { get; set; }

    /// <summary>What the email is about (<c>password_reset</c>, <c>invitation</c>…): for logs and the admin, never the link.</summary>
    public required string Kind { get; set; }

    public string? UserId { get; set; }

    public DateTimeOffset CreatedAt { get; set; }

    /// <summary>When the worker may take it next; null once it is sent or given up.</summary>
    public DateTimeOffset? NextAttemptAt { get; set; }

    public int Attempts { get; set; }

    /// <summary>The last failure (exception type and the server's reply; never the body).</summary>
    public string? LastError { get; set; }

    public DateTimeOffset? SentAt { get; set; }
}

/// <summary>An email's content: a subject, a plain-text body and the same in HTML.</summary>
public sealed record EmailContent(string Subject, string Text, string Html);
