using Identity.Core.Data;
using Identity.Core.Policies;

namespace Identity.Server.Account;

/// <summary>The policy of the account a user belongs to (platform administrators: the defaults).</summary>
/// <remarks>Read from this replica's <see cref="DirectoryCache"/>: a change made at another replica applies here within <c>Oidc:UserCacheDuration</c>.</remarks>
public sealed class AccountPolicies(AuthorityDbContext db, DirectoryCache directory)
{
    public async Task<AccountPolicy> ForAsync(ApplicationUser user, CancellationToken cancellationToken = default) =>
        user.AccountId is { } accountId && await directory.AccountAsync(db, accountId, cancellationToken) is { } account
            ? account.Policy
            : AccountPolicy.Default;

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
