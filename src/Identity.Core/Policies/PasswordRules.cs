using System.Globalization;

namespace Identity.Core.Policies;

/// <summary>Why a new password is refused: a stable <see cref="Code"/> for clients, a <see cref="Message"/> for people.</summary>
public sealed record PasswordViolation(string Code, string Message)
{
    public const string TooShortCode = "password_too_short";
    public const string CommonCode = "password_common";
    public const string ReusedCode = "password_reused";
}

/// <summary>The account's <see cref="PasswordPolicy"/> applied to a new password, and to the age of the current one.</summary>
public static class PasswordRules
{
    /// <summary>
    /// The rules a new password breaks; empty when it is acceptable. Length counts Unicode characters (code points),
    /// not UTF-16 units, so an emoji counts once. <paramref name="previousHashes"/> are the user's password hashes,
    /// most recent first, the current password's included: the first <see cref="PasswordPolicy.History"/> are checked
    /// with <paramref name="verifyAgainstHash"/>(password, hash). The history is checked only when the other rules
    /// pass: each verification is a deliberately slow hash, and a refused password needs no more reasons.
    /// </summary>
    public static IReadOnlyList<PasswordViolation> Check(string password, PasswordPolicy policy, IEnumerable<string>? previousHashes,
        Func<string, string, bool> verifyAgainstHash)
    {
        ArgumentNullException.ThrowIfNull(password);
        ArgumentNullException.ThrowIfNull(policy);
        ArgumentNullException.ThrowIfNull(verifyAgainstHash);

        var violations = new List<PasswordViolation>();
        if (Length(password) < policy.MinimumLength)
        {
            violations.Add(new(PasswordViolation.TooShortCode,
                string.Create(CultureInfo.InvariantCulture, $"Use at least {policy.MinimumLength} characters.")));
        }

        if (policy.RejectCommon && CommonPasswords.Contains(password))
        {
            violations.Add(new(PasswordViolation.CommonCode, "This password is one of the most commonly used; choose another."));
        }

        if (violations.Count == 0 && policy.History > 0 && previousHashes is not null
            && previousHashes.Take(policy.History).Any(hash => !string.IsNullOrEmpty(hash) && verifyAgainstHash(password, hash)))
        {
            violations.Add(new(PasswordViolation.ReusedCode,
                string.Create(CultureInfo.InvariantCulture, $"Choose a password different from your last {policy.History}.")));
        }

        return violations;
    }

    /// <summary>
    /// Whether a password changed at <paramref name="changedAt"/> must be changed at the next sign-in: from the
    /// instant its age reaches <see cref="PasswordPolicy.MaximumAge"/> (<c>now &gt;= changedAt + maximumAge</c>),
    /// never when there is no maximum age.
    /// </summary>
    public static bool IsExpired(DateTimeOffset changedAt, PasswordPolicy policy, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(policy);
        return policy.MaximumAge is { } maximumAge && now - changedAt >= maximumAge;
    }

    /// <summary>The length of a password in Unicode characters (code points).</summary>
    public static int Length(string password)
    {
        ArgumentNullException.ThrowIfNull(password);
        var length = 0;
        foreach (var _ in password.EnumerateRunes())
        {
            length++;
        }

        return length;
    }
}
