using Identity.Core.Data;
using Identity.Server.Admin;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.OpenIdConnect;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.Filters;
using Microsoft.AspNetCore.Mvc.RazorPages;
using OpenIddict.Abstractions;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace Identity.Server.AdminConsole;

/// <summary>
/// Every console page that shows or changes anything derives from this: before any handler runs, the signed-in person
/// is resolved as an <see cref="AdminActor"/> by the admin API's own rule (<see cref="AdminActor.ResolvePersonAsync"/>),
/// afresh at every request; a person who is not (or no longer) an administrator is refused (403 page).
/// </summary>
/// <remarks>
/// A page finds what it shows through <see cref="AdminActor.CanSee"/>: another account's page answers 404, as the API
/// does. Platform-only actions answer 403 (<see cref="PlatformOnly"/>).
/// </remarks>
public abstract class ConsolePageModel : PageModel
{
    /// <summary>The administrator using the page: the actor of every operation it calls.</summary>
    public AdminActor Admin { get; private set; } = null!;

    public override async Task OnPageHandlerExecutionAsync(PageHandlerExecutingContext context, PageHandlerExecutionDelegate next)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(next);
        var subject = User.GetClaim(Claims.Subject);
        var db = HttpContext.RequestServices.GetRequiredService<AuthorityDbContext>();
        if (subject is not null && User.GetClaim(ConsoleSession.StampClaim) != await ConsoleSession.StampAsync(db, subject, HttpContext.RequestAborted))
        {
            // Sessions revoked (or the password changed) since this console session began: it ends, and the sign-in starts again.
            await HttpContext.SignOutAsync(ConsoleClient.CookieScheme);
            // prompt=login (OpenID Connect Core §3.1.2.1): the SSO session may outlive the revocation by up to its stamp
            // check's interval; the console does not take it.
            context.Result = Challenge(new OpenIdConnectChallengeProperties { RedirectUri = ConsoleClient.BasePath, Prompt = "login" },
                ConsoleClient.OidcScheme);
            return;
        }

        var (actor, _) = subject is null
            ? (null, null)
            : await AdminActor.ResolvePersonAsync(db, subject, ConsoleClient.ClientId, HttpContext.Connection.RemoteIpAddress?.ToString(),
                HttpContext.RequestAborted);
        if (actor is null)
        {
            context.Result = new StatusCodeResult(StatusCodes.Status403Forbidden);
            return;
        }

        Admin = actor;
        await next();
    }

    /// <summary>An action only platform administrators may take (the page itself is visible).</summary>
    protected static IActionResult PlatformOnly() => new StatusCodeResult(StatusCodes.Status403Forbidden);

    /// <summary>A notice shown once, on the next page (after a redirect: post, redirect, get).</summary>
    protected void Notice(string text) => TempData[ConsoleLayout.NoticeKey] = text;
}
