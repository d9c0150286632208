using Identity.Server.Account;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace Identity.Server.AdminConsole.Pages;

/// <summary>Starts the console's sign-in at Identity (code + PKCE); back to <c>returnUrl</c> only when it is a console path.</summary>
public sealed class SignInModel : PageModel
{
    public IActionResult OnGet(string? returnUrl)
    {
        var local = Url.LocalOrNull(returnUrl);
        var back = local is not null && ConsoleClient.IsConsolePath(new PathString(local.Split('?')[0])) ? local : ConsoleClient.BasePath;
        return Challenge(new AuthenticationProperties { RedirectUri = back }, ConsoleClient.OidcScheme);
    }
}
