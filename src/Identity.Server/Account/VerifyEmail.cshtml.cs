using Identity.Core.Audit;
using Identity.Core.Operations;
using Identity.Core.Users;
using Identity.Server.Email;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.Extensions.Options;

namespace Identity.Server.Account;

/// <summary>
/// The page an emailed verification link opens (<c>/Account/VerifyEmail?token=…</c>): it names the address and asks
/// the person to confirm it with a button. Opening the link changes nothing (mail scanners open links), the POST uses it,
/// once. A used, voided or expired link, or an address another user took meanwhile, gets a clear page. The token moves
/// from the link into the form and is never sent as a Referer (<c>no-referrer</c>).
/// </summary>
public sealed class VerifyEmailModel(UserLinkOperations operations, UserLinks links, IOptions<EmailOptions> email, TimeProvider time) : PageModel
{
    private const string UnusableLink = "It has expired or was already used. Ask your administrator, or the page that sent it, for a new one.";

    [BindProperty(SupportsGet = true)]
    public string? Token { get; set; }

    /// <summary>The address the link proves.</summary>
    public string? Address { get; private set; }

    /// <summary>Why the link cannot be used; null while it can.</summary>
    public string? Unusable { get; private set; }

    /// <summary>The address now verified (after the POST).</summary>
    public string? Verified { get; private set; }

    public async Task<IActionResult> OnGetAsync()
    {
        if (!email.Value.Enabled)
        {
            return NotFound();
        }

        var (state, link) = await links.FindAsync(Token, UserLinkPurposes.EmailVerification, time.GetUtcNow(), HttpContext.RequestAborted);
        Unusable = state == LinkState.Valid ? null : UnusableLink;
        Address = state == LinkState.Valid ? link!.Email : null;
        return Page();
    }

    public async Task<IActionResult> OnPostAsync()
    {
        if (!email.Value.Enabled)
        {
            return NotFound();
        }

        var (result, address) = await operations.VerifyEmailAsync(Token ?? "", Actor.Anonymous(HttpContext.Connection.RemoteIpAddress?.ToString()),
            HttpContext.RequestAborted);
        if (result.Succeeded)
        {
            Verified = address;
        }
        else if (result.Errors?.TryGetValue("token", out var reasons) == true)
        {
            Unusable = reasons[0] == UserLinkOperations.AddressTaken ? reasons[0] : UnusableLink;
        }
        else
        {
            Unusable = "The account changed meanwhile: open the link again.";
        }

        return Page();
    }
}
