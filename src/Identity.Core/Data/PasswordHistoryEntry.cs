namespace Identity.Core.Data;

/// <summary>A password hash the user had before; the account's password history rule refuses reusing the last N.</summary>
public sealed class PasswordHistoryEntry
{
    public long Id { get; set; }

    public required string UserId { get; set; }

    /// <summary>The ASP.NET Core Identity hash (PBKDF2), never the password.</summary>
    public required string PasswordHash { get; set; }

    /// <summary>When this password was set.</summary>
    public DateTimeOffset SetAt { get; set; }
}
