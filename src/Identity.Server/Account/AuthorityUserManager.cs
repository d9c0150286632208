using Identity.Core.Data;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Identity.Server.Account;

/// <summary>
/// ASP.NET Core Identity's user manager, with lockout taken from the user's account policy
/// (<c>lockout.maxFailedAttempts</c>, <c>lockout.duration</c>) instead of one global setting, and every new password
/// (create, change, reset, add) recorded in the password history with its date, in the same <c>SaveChanges</c> as
/// the user: a rehash on sign-in (same password, newer hash format) is not a new password and is not recorded.
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
    AuthorityDbContext db,
    TimeProvider time)
    : UserManager<ApplicationUser>(store, optionsAccessor, passwordHasher, userValidators, passwordValidators, keyNormalizer, errors, services, logger)
{
    public override async Task<IdentityResult> CreateAsync(ApplicationUser user)
    {
        await RecordNewPasswordAsync(user);
        return await base.CreateAsync(user);
    }

    protected override async Task<IdentityResult> UpdateUserAsync(ApplicationUser user)
    {
        await RecordNewPasswordAsync(user);
        return await base.UpdateUserAsync(user);
    }

    /// <summary>Tracks the new hash in the history (keeping the account's last N) and dates it; the store's save writes both.</summary>
    private async Task RecordNewPasswordAsync(ApplicationUser user)
    {
        // Identity validates a new password, hashes it into the user, then saves through CreateAsync or UpdateUserAsync.
        var validator = PasswordValidators.OfType<PasswordPolicyValidator>().SingleOrDefault();
        if (validator?.TakeValidated(user) is not { } hashBefore || user.PasswordHash is not { } hash || hash == hashBefore)
        {
            return;
        }

        var now = time.GetUtcNow();
        user.PasswordChangedAt = now;
        var keep = (await policies.ForAsync(user, CancellationToken)).Password.History;
        if (keep > 0)
        {
            db.PasswordHistory.Add(new PasswordHistoryEntry { UserId = user.Id, PasswordHash = hash, SetAt = now });
        }

        var older = await db.PasswordHistory.Where(h => h.UserId == user.Id)
            .OrderByDescending(h => h.SetAt).ThenByDescending(h => h.Id)
            .Skip(Math.Max(keep - 1, 0)).ToListAsync(CancellationToken);
        db.PasswordHistory.RemoveRange(older);
    }

    /// <summary>
    /// Locked out until the end set by <see cref="AccessFailedAsync"/>, read on the same <see cref="TimeProvider"/>
    /// (Identity's own check reads the system clock).
    /// </summary>
    public override async Task<bool> IsLockedOutAsync(ApplicationUser user)
    {
        ArgumentNullException.ThrowIfNull(user);
        if (!SupportsUserLockout)
        {
            return false;
        }

        var lockoutStore = (IUserLockoutStore<ApplicationUser>)Store;
        return await lockoutStore.GetLockoutEnabledAsync(user, CancellationToken)
            && await lockoutStore.GetLockoutEndDateAsync(user, CancellationToken) is { } end
            && end >= time.GetUtcNow();
    }

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
