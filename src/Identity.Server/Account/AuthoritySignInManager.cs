using Identity.Core.Accounts;
using Identity.Core.Data;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Identity;
using Microsoft.Extensions.Options;

namespace Identity.Server.Account;

/// <summary>
/// ASP.NET Core Identity's sign-in manager, plus the authority's own rules: a disabled user, or a user of a
/// suspended account, cannot sign in, redeem a code or refresh a token; a lockout holds however many guesses arrive at
/// once; and a password sign-in costs the same whether or not the email has an account (<see cref="DecoyPasswordHash"/>).
/// </summary>
public sealed class AuthoritySignInManager(
    AuthorityUserManager userManager,
    IHttpContextAccessor contextAccessor,
    IUserClaimsPrincipalFactory<ApplicationUser> claimsFactory,
    IOptions<IdentityOptions> optionsAccessor,
    ILogger<SignInManager<ApplicationUser>> logger,
    IAuthenticationSchemeProvider schemes,
    IUserConfirmation<ApplicationUser> confirmation,
    AuthorityDbContext db,
    DirectoryCache directory,
    DecoyPasswordHash decoy)
    : SignInManager<ApplicationUser>(userManager, contextAccessor, claimsFactory, optionsAccessor, logger, schemes, confirmation)
{
    public override async Task<bool> CanSignInAsync(ApplicationUser user)
    {
        if (user.Status != UserStatus.Active)
        {
            return false;
        }

        // The account as this replica last read it (DirectoryCache: at most Oidc:UserCacheDuration old); a user whose
        // account no longer exists is being deleted with it.
        if (user.AccountId is { } accountId
            && await directory.AccountAsync(db, accountId, CancellationToken.None) is not { Status: AccountStatus.Active })
        {
            return false;
        }

        return await base.CanSignInAsync(user);
    }

    /// <summary>
    /// Identity's password check, with the lockout decided on the stored row (<see cref="AuthorityUserManager"/>) rather
    /// than on the copy read before the password was checked: wrong guesses racing a right one may lock the user out
    /// meanwhile, and then the right one is refused too. With 30 simultaneous guesses the copy let the right password
    /// in after the lockout.
    /// </summary>
    public override async Task<SignInResult> CheckPasswordSignInAsync(ApplicationUser user, string password, bool lockoutOnFailure)
    {
        ArgumentNullException.ThrowIfNull(user);
        if (await PreSignInCheck(user) is { } refused)
        {
            return refused;
        }

        if (!await userManager.CheckPasswordAsync(user, password))
        {
            if (!lockoutOnFailure || !userManager.SupportsUserLockout)
            {
                return SignInResult.Failed;
            }

            var counted = await userManager.AccessFailedAsync(user);
            return counted.Succeeded && await userManager.IsLockedOutAsync(user) ? await LockedOut(user) : SignInResult.Failed;
        }

        // With a second factor to come, only that step clears the failures (TwoFactor pages): otherwise the right
        // password would reset the count between guesses at the code, which would never lock.
        var unlocked = await userManager.GetTwoFactorEnabledAsync(user)
            ? !await userManager.IsLockedOutAsStoredAsync(user)
            : (await userManager.ResetAccessFailedCountAsync(user)).Succeeded;
        return unlocked ? SignInResult.Success : await LockedOut(user);
    }

    /// <summary>The answer to a password for an email no user has: failed, after as much work as a wrong password.</summary>
    public SignInResult CheckPasswordOfUnknownUser(string password)
    {
        decoy.Verify(UserManager.PasswordHasher, password);
        return SignInResult.Failed;
    }

    /// <summary>A user refused before the password is checked (locked out, not allowed) waits as long as one who is not.</summary>
    protected override async Task<SignInResult?> PreSignInCheck(ApplicationUser user)
    {
        var refused = await base.PreSignInCheck(user);
        if (refused is not null)
        {
            decoy.Verify(UserManager.PasswordHasher, "");
        }

        return refused;
    }
}
