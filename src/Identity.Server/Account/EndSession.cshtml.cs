using Identity.Core.Data;
using Microsoft.AspNetCore;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using OpenIddict.Server.AspNetCore;

namespace Identity.Server.Account;

/// <summary>
/// RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0 §2): OpenIddict has validated
/// <c>id_token_hint</c> and that <c>post_logout_redirect_uri</c> is registered; the person confirms, the SSO session
/// ends, and OpenIddict redirects back with <c>state</c>.
/// </summary>
public sealed class EndSessionModel(SignInManager<ApplicationUser> signIn, ILogger<EndSessionModel> logger) : PageModel
{
    public IReadOnlyList<KeyValuePair<string, string>> Parameters { get; private set; } = [];

    public IActionResult OnGet()
    {
        var request = HttpContext.GetOpenIddictServerRequest()
            ?? throw new InvalidOperationException("The end-session request cannot be retrieved.");
        Parameters = request.GetParameters()
            .Where(p => p.Key != "__RequestVerificationToken")
            .Select(p => new KeyValuePair<string, string>(p.Key, p.Value.ToString() ?? ""))
            .ToList();
        return Page();
    }

    public async Task<IActionResult> OnPostAsync()
    {
        await signIn.SignOutAsync();
        logger.LogInformation("SSO session ended");
        return SignOut(new AuthenticationProperties { RedirectUri = "/" }, OpenIddictServerAspNetCoreDefaults.AuthenticationScheme);
    }
}
