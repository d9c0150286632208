using Identity.Core.Accounts;
using Identity.Core.Data;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Identity.Server.Account;

/// <summary>
/// ASP.NET Core Identity's sign-in manager, plus the authority's own rule: a disabled user, or a user of a
/// suspended account, cannot sign in, redeem a code or refresh a token.
/// </summary>
public sealed class AuthoritySignInManager(
    UserManager<ApplicationUser> userManager,
    IHttpContextAccessor contextAccessor,
    IUserClaimsPrincipalFactory<ApplicationUser> claimsFactory,
    IOptions<IdentityOptions> optionsAccessor,
    ILogger<SignInManager<ApplicationUser>> logger,
    IAuthenticationSchemeProvider schemes,
    IUserConfirmation<ApplicationUser> confirmation,
    AuthorityDbContext db)
    : SignInManager<ApplicationUser>(userManager, contextAccessor, claimsFactory, optionsAccessor, logger, schemes, confirmation)
{
    public override async Task<bool> CanSignInAsync(ApplicationUser user)
    {
        if (user.Status != UserStatus.Active)
        {
            return false;
        }

        if (user.AccountId is { } accountId
            && await db.Accounts.AsNoTracking().AnyAsync(a => a.Id == accountId && a.Status != AccountStatus.Active))
        {
            return false;
        }

        return await base.CanSignInAsync(user);
    }
}
