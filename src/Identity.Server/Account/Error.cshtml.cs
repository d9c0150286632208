using Microsoft.AspNetCore;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using OpenIddict.Server.AspNetCore;

namespace Identity.Server.Account;

/// <summary>
/// Errors that must not go back to the client — an unknown client or an unregistered redirect URI
/// (RFC 6749 §4.1.2.1) — are shown here, at Identity, and never redirected.
/// </summary>
[IgnoreAntiforgeryToken]
public sealed class ErrorModel : PageModel
{
    public string Message { get; private set; } = "The request could not be processed.";

    public string? Detail { get; private set; }

    public void OnGet() => Describe();

    public void OnPost() => Describe();

    private void Describe()
    {
        if (HttpContext.GetOpenIddictServerResponse() is { Error: { Length: > 0 } error } response)
        {
            Message = $"The application's request was refused ({error}).";
            Detail = response.ErrorDescription;
        }
    }
}
