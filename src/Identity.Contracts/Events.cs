namespace Identity.Contracts;

// Contract version 1. Every event about a user carries the user's Version: it increases on every change of the
// user, so a consumer applies an event only if its version is newer than the one it stored. Duplicates and
// out-of-order deliveries are then harmless (at-least-once delivery, no ordering guarantee needed for correctness).

/// <summary>Values of <see cref="UserChanged.Status"/>.</summary>
public static class UserStatuses
{
    public const string Active = "active";
    public const string Disabled = "disabled";
}

/// <summary>A full snapshot of a user, sent after every change to the user (and when a region must learn of them).</summary>
public sealed record UserChanged
{
    /// <summary>Identity's stable user id (the <c>sub</c> of the user's tokens).</summary>
    public required string UserId { get; init; }

    public required Guid AccountId { get; init; }

    public required string Email { get; init; }

    /// <summary>Whether the person proved <see cref="Email"/> is theirs (added in v1.2; absent from older senders).</summary>
    public bool? EmailVerified { get; init; }

    public string? DisplayName { get; init; }

    /// <summary><c>owner</c>, <c>admin</c> or <c>member</c>.</summary>
    public required string Role { get; init; }

    /// <summary><see cref="UserStatuses"/>: a disabled user must lose access in the region at once.</summary>
    public required string Status { get; init; }

    public required bool MfaEnrolled { get; init; }

    /// <summary>Set while the user is locked out after failed sign-ins (added in v1.1; absent from older senders).</summary>
    public DateTimeOffset? LockedOutUntil { get; init; }

    public required long Version { get; init; }

    /// <summary>When the change was committed at Identity.</summary>
    public required DateTimeOffset ChangedAt { get; init; }
}

/// <summary>The user no longer exists for this region (deleted, or their account left the region).</summary>
public sealed record UserDeleted
{
    public required string UserId { get; init; }

    public required Guid AccountId { get; init; }

    /// <summary>Newer than every <see cref="UserChanged.Version"/> of this user; an older snapshot must not resurrect them.</summary>
    public required long Version { get; init; }

    public required DateTimeOffset DeletedAt { get; init; }
}

/// <summary>A snapshot of an account: its status, the regions it lives in and a summary of its settings.</summary>
public sealed record AccountChanged
{
    public required Guid AccountId { get; init; }

    public required string Name { get; init; }

    /// <summary><c>active</c> or <c>suspended</c>.</summary>
    public required string Status { get; init; }

    /// <summary>Region codes the account is enabled in. A region not in this list must forget the account.</summary>
    public required IReadOnlyList<string> Regions { get; init; }

    /// <summary><c>off</c>, <c>optional</c>, <c>requiredForAdmins</c> or <c>requiredForEveryone</c>.</summary>
    public required string MfaRequirement { get; init; }

    /// <summary>The SSO session lifetime the account allows.</summary>
    public TimeSpan? SessionLifetime { get; init; }

    public required long Version { get; init; }

    public required DateTimeOffset ChangedAt { get; init; }
}

/// <summary>Every session and token of the user was revoked at Identity; regions should drop cached sessions too.</summary>
public sealed record SessionsRevoked
{
    public required string UserId { get; init; }

    public required Guid AccountId { get; init; }

    /// <summary>e.g. <c>admin</c>, <c>user_disabled</c>, <c>password_changed</c>.</summary>
    public required string Reason { get; init; }

    public required DateTimeOffset RevokedAt { get; init; }
}

/// <summary>
/// A page of the sync API (<c>GET /sync/v1/regions/{region}/users?after={cursor}&amp;limit={n}</c>): the current
/// snapshots of the region's users, ordered by user id. <see cref="Next"/> is the <c>after</c> of the next page, or
/// <c>null</c> on the last page.
/// </summary>
public sealed record UserPage
{
    public required IReadOnlyList<UserChanged> Users { get; init; }

    public string? Next { get; init; }
}
