using System.Text.Json;
using System.Text.Json.Serialization;

namespace Identity.Core.Policies;

/// <summary>
/// An account's policy, typed: the parsed form of <see cref="Accounts.Account.Settings"/>. Immutable; a part missing
/// from the JSON document takes its defaults. Read it with <see cref="Parse"/>, which validates every field; write it
/// with <see cref="ToJson"/>, which writes every field (the stored document is always complete and normalised).
/// </summary>
public sealed record AccountPolicy
{
    /// <summary>The policy of an account whose settings say nothing (<c>{}</c>).</summary>
    public static AccountPolicy Default { get; } = new();

    /// <summary>camelCase names, camelCase enum strings (never numbers), durations as <c>[d.]hh:mm:ss</c>.</summary>
    public static JsonSerializerOptions JsonOptions { get; } = new(JsonSerializerDefaults.Web)
    {
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.CamelCase, allowIntegerValues: false) },
    };

    public MfaPolicy Mfa { get; init; } = new();

    public PasswordPolicy Password { get; init; } = new();

    public LockoutPolicy Lockout { get; init; } = new();

    public SessionPolicy Session { get; init; } = new();

    public IpAllowList IpAllowList { get; init; } = new();

    /// <summary>
    /// Parses and validates a settings document. Returns the policy, or <c>null</c> with <paramref name="errors"/>
    /// keyed by JSON path (<c>password.minimumLength</c>, <c>ipAllowList.ranges[1]</c>; <c>$</c> for the document
    /// itself) when anything is wrong, unknown properties included. Every error is reported, not only the first.
    /// </summary>
    public static AccountPolicy? Parse(string json, out Dictionary<string, string[]> errors)
    {
        ArgumentNullException.ThrowIfNull(json);
        var reader = new AccountPolicyReader();
        var policy = reader.Read(json);
        errors = reader.Errors();
        return errors.Count == 0 ? policy : null;
    }

    /// <summary>The complete document, every default written out; <see cref="Parse"/> reads it back unchanged.</summary>
    public string ToJson() => JsonSerializer.Serialize(this, JsonOptions);
}

/// <summary>When a second factor is required.</summary>
public enum MfaRequirement
{
    /// <summary>No second factor is asked for, even from users who enrolled one.</summary>
    Off,

    /// <summary>Users may enrol a second factor; those who did are asked for it.</summary>
    Optional,

    /// <summary>Required of the account's owners and admins (<see cref="Accounts.AccountRoles.CanAdminister"/>).</summary>
    RequiredForAdmins,

    /// <summary>Required of every user of the account.</summary>
    RequiredForEveryone,
}

/// <summary>A kind of second factor.</summary>
public enum MfaFactor
{
    Totp,

    /// <summary>One-time recovery codes: a fallback, never allowed on its own.</summary>
    RecoveryCode,

    Passkey,
}

/// <summary>Multi-factor authentication: when it is required and which factors may be used.</summary>
public sealed record MfaPolicy
{
    public MfaRequirement Requirement { get; init; } = MfaRequirement.Optional;

    public IReadOnlyList<MfaFactor> AllowedFactors { get; init; } = [MfaFactor.Totp, MfaFactor.RecoveryCode, MfaFactor.Passkey];

    public bool Allows(MfaFactor factor) => AllowedFactors.Contains(factor);

    // Value equality over the list too (a record compares lists by reference).
    public bool Equals(MfaPolicy? other) =>
        other is not null && Requirement == other.Requirement && AllowedFactors.SequenceEqual(other.AllowedFactors);

    public override int GetHashCode() => HashCode.Combine(Requirement, AllowedFactors.Count);
}

/// <summary>Password rules (<see cref="PasswordRules"/>).</summary>
public sealed record PasswordPolicy
{
    /// <summary>Minimum length in Unicode characters (code points), 8 to 128.</summary>
    public int MinimumLength { get; init; } = 12;

    /// <summary>Reject the most common passwords (<see cref="CommonPasswords"/>), in any case.</summary>
    public bool RejectCommon { get; init; } = true;

    /// <summary>A new password must differ from this many most recent ones, the current one included (0 to 24).</summary>
    public int History { get; init; } = 5;

    /// <summary>After this long a password must be changed at the next sign-in; <c>null</c>: never.</summary>
    public TimeSpan? MaximumAge { get; init; }

    /// <summary>Members may reset a forgotten password by an emailed link; false: only the account's admins can help.</summary>
    public bool SelfServiceReset { get; init; } = true;
}

/// <summary>Per-user lockout after repeated failed sign-ins (the per-IP throttle is the server's, not the account's).</summary>
public sealed record LockoutPolicy
{
    /// <summary>Failed attempts in a row that lock the user out (3 to 50).</summary>
    public int MaxFailedAttempts { get; init; } = 5;

    /// <summary>How long a lockout lasts (1 minute to 1 day).</summary>
    public TimeSpan Duration { get; init; } = TimeSpan.FromMinutes(15);
}

/// <summary>The SSO session of the account's users.</summary>
public sealed record SessionPolicy
{
    /// <summary>Absolute lifetime of a session (5 minutes to 30 days).</summary>
    public TimeSpan Lifetime { get; init; } = TimeSpan.FromHours(8);

    /// <summary>A session unused for this long ends (1 minute up to <see cref="Lifetime"/>).</summary>
    public TimeSpan IdleTimeout { get; init; } = TimeSpan.FromHours(1);
}

/// <summary>The networks the account's users may sign in from (<see cref="IpRanges"/>).</summary>
public sealed record IpAllowList
{
    /// <summary>CIDR ranges, IPv4 or IPv6 (<c>10.0.0.0/8</c>, <c>2001:db8::/32</c>); empty: anywhere.</summary>
    public IReadOnlyList<string> Ranges { get; init; } = [];

    public bool Allows(System.Net.IPAddress? address) => IpRanges.Allows(Ranges, address);

    public bool Equals(IpAllowList? other) => other is not null && Ranges.SequenceEqual(other.Ranges, StringComparer.Ordinal);

    public override int GetHashCode() => Ranges.Count;
}
