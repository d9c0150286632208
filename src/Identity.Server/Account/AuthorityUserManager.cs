using Identity.Core.Data;
using Microsoft.AspNetCore.Identity;
using Microsoft.Extensions.Options;

namespace Identity.Server.Account;

/// <summary>
/// ASP.NET Core Identity's user manager, with lockout taken from the user's account policy
/// (<c>lockout.maxFailedAttempts</c>, <c>lockout.duration</c>) instead of one global setting.
/// </summary>
public sealed class AuthorityUserManager(
    IUserStore<ApplicationUser> store,
    IOptions<IdentityOptions> optionsAccessor,
    IPasswordHasher<ApplicationUser> passwordHasher,
    IEnumerable<IUserValidator<ApplicationUser>> userValidators,
    IEnumerable<IPasswordValidator<ApplicationUser>> passwordValidators,
    ILookupNormalizer keyNormalizer,
    IdentityErrorDescriber errors,
    IServiceProvider services,
    ILogger<UserManager<ApplicationUser>> logger,
    AccountPolicies policies,
    TimeProvider time)
    : UserManager<ApplicationUser>(store, optionsAccessor, passwordHasher, userValidators, passwordValidators, keyNormalizer, errors, services, logger)
{
    public override async Task<IdentityResult> AccessFailedAsync(ApplicationUser user)
    {
        ArgumentNullException.ThrowIfNull(user);
        if (!SupportsUserLockout || !await GetLockoutEnabledAsync(user))
        {
            return IdentityResult.Success;
        }

        var lockout = (await policies.ForAsync(user, CancellationToken)).Lockout;
        var lockoutStore = (IUserLockoutStore<ApplicationUser>)Store;
        var count = await lockoutStore.IncrementAccessFailedCountAsync(user, CancellationToken);
        if (count < lockout.MaxFailedAttempts)
        {
            return await UpdateUserAsync(user);
        }

        Logger.LogInformation("User is locked out for {Duration} after {Count} failed attempts", lockout.Duration, count);
        await lockoutStore.SetLockoutEndDateAsync(user, time.GetUtcNow().Add(lockout.Duration), CancellationToken);
        await lockoutStore.ResetAccessFailedCountAsync(user, CancellationToken);
        return await UpdateUserAsync(user);
    }
}
