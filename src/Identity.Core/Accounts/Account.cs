namespace Identity.Core.Accounts;

/// <summary>A customer company: its users, the regions it lives in, and its policy settings.</summary>
public sealed class Account
{
    public Guid Id { get; set; }

    public required string Name { get; set; }

    public AccountStatus Status { get; set; } = AccountStatus.Active;

    public List<AccountRegion> Regions { get; set; } = [];

    /// <summary>The account's settings document (MFA, password, lockout, session, IP rules), stored as JSON.</summary>
    public string Settings { get; set; } = "{}";

    /// <summary>Increases on every change of <see cref="Settings"/>.</summary>
    public int SettingsVersion { get; set; } = 1;

    /// <summary>Increases on every change; the ETag of the account and the optimistic-concurrency token.</summary>
    public long Version { get; set; } = 1;

    public DateTimeOffset CreatedAt { get; set; }

    public DateTimeOffset UpdatedAt { get; set; }
}

public enum AccountStatus
{
    Active,
    Suspended,
}

public sealed class AccountRegion
{
    public Guid AccountId { get; set; }

    public required string RegionCode { get; set; }
}

/// <summary>A deployment region (<c>eu</c>, <c>us</c>, …): where an account's data lives.</summary>
public sealed class Region
{
    public required string Code { get; set; }

    public required string DisplayName { get; set; }
}

/// <summary>A user's role inside their account.</summary>
public static class AccountRoles
{
    public const string Owner = "owner";
    public const string Admin = "admin";
    public const string Member = "member";

    public static readonly IReadOnlySet<string> All = new HashSet<string>(StringComparer.Ordinal) { Owner, Admin, Member };

    public static bool CanAdminister(string? role) => role is Owner or Admin;
}

public enum UserStatus
{
    Active,
    Disabled,
}
