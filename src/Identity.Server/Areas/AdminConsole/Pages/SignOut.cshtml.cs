using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace Identity.Server.AdminConsole.Pages;

/// <summary>Ends the console's session and, through RP-initiated logout, the SSO session at Identity too.</summary>
public sealed class SignOutModel : PageModel
{
    public IActionResult OnGet() => Redirect(ConsoleClient.BasePath);

    public IActionResult OnPost() => SignOut(new AuthenticationProperties { RedirectUri = ConsoleClient.BasePath + "/signed-out" },
        ConsoleClient.CookieScheme, ConsoleClient.OidcScheme);
}
