namespace Identity.Region.Replica;

/// <summary>
/// The region's copy of a user. A deleted user stays as a tombstone (<see cref="Deleted"/>, personal data erased)
/// that keeps its <see cref="Version"/>, so an older snapshot delivered late cannot bring the user back.
/// </summary>
public sealed class ReplicaUser
{
    public string UserId { get; set; } = "";

    public Guid AccountId { get; set; }

    public string Email { get; set; } = "";

    public string? DisplayName { get; set; }

    public string Role { get; set; } = "";

    public string Status { get; set; } = "";

    public bool MfaEnrolled { get; set; }

    /// <summary>The version of the last snapshot applied (0: only a session revocation is known so far).</summary>
    public long Version { get; set; }

    public bool Deleted { get; set; }

    /// <summary>
    /// Tombstoned because the account left the region, not because the user was deleted: once the account is back,
    /// a snapshot of the same version (the same state, e.g. from a resync) restores the user.
    /// </summary>
    public bool DeletedWithAccount { get; set; }

    /// <summary>Sessions opened before this (UTC) must be refused by the regional app.</summary>
    public DateTime? SessionsRevokedAt { get; set; }

    /// <summary>When this replica last wrote the row (UTC, local clock).</summary>
    public DateTime UpdatedAt { get; set; }
}

/// <summary>The region's copy of an account.</summary>
public sealed class ReplicaAccount
{
    public Guid AccountId { get; set; }

    public string Name { get; set; } = "";

    public string Status { get; set; } = "";

    /// <summary>The account's region codes, comma-separated.</summary>
    public string Regions { get; set; } = "";

    /// <summary>Whether this region is among <see cref="Regions"/>: the gate for the account's user snapshots.</summary>
    public bool InRegion { get; set; }

    public string MfaRequirement { get; set; } = "";

    public TimeSpan? SessionLifetime { get; set; }

    public long Version { get; set; }

    public DateTime UpdatedAt { get; set; }
}

/// <summary>The replica's single bookkeeping row.</summary>
public sealed class ReplicaState
{
    public const int SingletonId = 1;

    public int Id { get; set; } = SingletonId;

    /// <summary>When the last complete resync finished (UTC); null until the first one.</summary>
    public DateTime? LastFullResyncAt { get; set; }

    public int LastFullResyncUsers { get; set; }
}
