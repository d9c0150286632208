using Identity.Core.Data;
using Identity.Core.Users;
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
    UserLockout lockouts,
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
    /// (Identity's own check reads the system clock). This reads the user as loaded; <see cref="IsLockedOutAsStoredAsync"/>
    /// reads the row now.
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

    /// <summary>Whether a lockout holds on the user's stored row now (concurrent failures may have locked it since it was loaded).</summary>
    public async Task<bool> IsLockedOutAsStoredAsync(ApplicationUser user)
    {
        ArgumentNullException.ThrowIfNull(user);
        var now = time.GetUtcNow();
        return SupportsUserLockout
            && await db.Users.AnyAsync(u => u.Id == user.Id && u.LockoutEnabled && u.LockoutEnd != null && u.LockoutEnd >= now, CancellationToken);
    }

    /// <summary>
    /// Counts a failed attempt with one conditional statement on the stored row, so that concurrent failures each count
    /// (reading the user, adding one and saving lost all but one of them, and the losers' audit saves then failed on
    /// the user's concurrency token: 500). A failure while a lockout holds is not counted: the attempt was refused
    /// anyway. When the count reaches the account's <c>lockout.maxFailedAttempts</c>, the user is locked out by its
    /// user operation (<see cref="UserLockout"/>), which tells the user's regions in the same transaction. The
    /// user is read again: <see cref="IsLockedOutAsync"/> then answers for the row as it now stands.
    /// </summary>
    public override async Task<IdentityResult> AccessFailedAsync(ApplicationUser user)
    {
        ArgumentNullException.ThrowIfNull(user);
        if (!SupportsUserLockout || !await GetLockoutEnabledAsync(user))
        {
            return IdentityResult.Success;
        }

        var lockout = (await policies.ForAsync(user, CancellationToken)).Lockout;
        var now = time.GetUtcNow();
        await db.Users.Where(u => u.Id == user.Id && u.LockoutEnabled && (u.LockoutEnd == null || u.LockoutEnd < now))
            .ExecuteUpdateAsync(set => set.SetProperty(u => u.AccessFailedCount, u => u.AccessFailedCount + 1), CancellationToken);

        var result = IdentityResult.Success;
        for (var attempt = 0; attempt < 3; attempt++)
        {
            await db.Entry(user).ReloadAsync(CancellationToken);
            if (user.AccessFailedCount < lockout.MaxFailedAttempts || await IsLockedOutAsync(user))
            {
                return IdentityResult.Success;
            }

            Logger.LogInformation("User is locked out for {Duration} after {Count} failed attempts", lockout.Duration, user.AccessFailedCount);
            if ((await lockouts.LockOutAsync(user, now.Add(lockout.Duration), CancellationToken)).Succeeded)
            {
                return IdentityResult.Success;
            }

            result = IdentityResult.Failed(ErrorDescriber.ConcurrencyFailure());

            // Another change to the user came first (most likely a concurrent failure locking it out): read it again.
        }

        await db.Entry(user).ReloadAsync(CancellationToken); // nothing of the failed attempts stays to be saved with the audit entry
        return result;
    }

    /// <summary>
    /// Clears the failed attempts after a success, with one conditional statement: only while no lockout holds on the
    /// stored row. Wrong guesses racing the right one may have locked the user out since it was loaded; then this fails,
    /// and the sign-in with it: a lockout bounds the guesses however many arrive at once.
    /// </summary>
    public override async Task<IdentityResult> ResetAccessFailedCountAsync(ApplicationUser user)
    {
        ArgumentNullException.ThrowIfNull(user);
        var now = time.GetUtcNow();
        var cleared = await db.Users.Where(u => u.Id == user.Id && (!u.LockoutEnabled || u.LockoutEnd == null || u.LockoutEnd < now))
            .ExecuteUpdateAsync(set => set.SetProperty(u => u.AccessFailedCount, 0), CancellationToken);
        if (cleared == 0)
        {
            await db.Entry(user).ReloadAsync(CancellationToken);
            return IdentityResult.Failed(new IdentityError { Code = "LockedOut", Description = "The user is locked out." });
        }

        // As stored, so that a later save of the user neither writes it again nor sees a change.
        var count = db.Entry(user).Property(u => u.AccessFailedCount);
        count.CurrentValue = 0;
        count.OriginalValue = 0;
        return IdentityResult.Success;
    }
}
