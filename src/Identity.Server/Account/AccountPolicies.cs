using Identity.Core.Data;
using Identity.Core.Policies;
using Microsoft.EntityFrameworkCore;

namespace Identity.Server.Account;

/// <summary>The policy of the account a user belongs to (platform administrators: the defaults).</summary>
public sealed class AccountPolicies(AuthorityDbContext db, ILogger<AccountPolicies> logger)
{
    public async Task<AccountPolicy> ForAsync(ApplicationUser user, CancellationToken cancellationToken = default)
    {
        if (user.AccountId is not { } accountId)
        {
            return AccountPolicy.Default;
        }

        var settings = await db.Accounts.AsNoTracking().Where(a => a.Id == accountId).Select(a => a.Settings).SingleOrDefaultAsync(cancellationToken);
        if (settings is null || settings == "{}")
        {
            return AccountPolicy.Default;
        }

        var policy = AccountPolicy.Parse(settings, out var errors);
        if (policy is null)
        {
            // Stored before settings were validated as a policy: fall back to the defaults and say so.
            logger.LogWarning("Account {AccountId} has unreadable settings ({Fields}); using defaults", accountId, string.Join(", ", errors.Keys));
            return AccountPolicy.Default;
        }

        return policy;
    }

    /// <summary>
    /// The user's password has reached the account's <c>password.maximumAge</c> (counted from when it was set, or from
    /// the user's creation for a password set before that was recorded) and must be changed before any code is issued.
    /// </summary>
    public async Task<bool> IsPasswordExpiredAsync(ApplicationUser user, DateTimeOffset now, CancellationToken cancellationToken = default) =>
        IsPasswordExpired(user, await ForAsync(user, cancellationToken), now);

    /// <inheritdoc cref="IsPasswordExpiredAsync"/>
    public static bool IsPasswordExpired(ApplicationUser user, AccountPolicy policy, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(user);
        ArgumentNullException.ThrowIfNull(policy);
        return user.PasswordHash is not null && PasswordRules.IsExpired(user.PasswordChangedAt ?? user.CreatedAt, policy.Password, now);
    }

    /// <summary>Whether the user's account lets this factor count as a second factor (<c>mfa.allowedFactors</c>).</summary>
    public async Task<bool> AllowsFactorAsync(ApplicationUser user, MfaFactor factor, CancellationToken cancellationToken = default) =>
        (await ForAsync(user, cancellationToken)).Mfa.Allows(factor);
}
