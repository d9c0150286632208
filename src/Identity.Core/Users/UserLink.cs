namespace Identity.Core.Users;

/// <summary>
/// A single-use link sent to a user by email (a password reset, an invitation, an email verification). Only the hash
/// of its token is stored (SHA-256: the token is 256 random bits, so a hash cannot be guessed back); the link works
/// until <see cref="ExpiresAt"/>, once: using it, or a newer link of the same purpose, sets <see cref="EndedAt"/>.
/// </summary>
public sealed class UserLink
{
    public long Id { get; set; }

    public required string UserId { get; set; }

    /// <summary>One of <see cref="UserLinkPurposes"/>.</summary>
    public required string Purpose { get; set; }

    /// <summary>SHA-256 of the token, base64url.</summary>
    public required string TokenHash { get; set; }

    /// <summary>The address the link was sent to; for a verification, the address it proves (maybe not yet the user's).</summary>
    public required string Email { get; set; }

    public DateTimeOffset CreatedAt { get; set; }

    public DateTimeOffset ExpiresAt { get; set; }

    /// <summary>When the link was used or voided (by a newer one, or by the change it was for); null while it works.</summary>
    public DateTimeOffset? EndedAt { get; set; }
}

/// <summary>What a <see cref="UserLink"/> is for.</summary>
public static class UserLinkPurposes
{
    public const string PasswordReset = "password_reset";
    public const string Invitation = "invitation";
    public const string EmailVerification = "email_verification";
}

/// <summary>An address a user is moving to (decision 0085): its live verification link's address, sent at, valid until.</summary>
public sealed record PendingEmail(string Address, DateTimeOffset SentAt, DateTimeOffset ExpiresAt);
