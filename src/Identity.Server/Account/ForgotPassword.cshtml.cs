using System.ComponentModel.DataAnnotations;
using System.Diagnostics;
using Identity.Core.Audit;
using Identity.Core.Users;
using Identity.Server.Email;
using Identity.Server.Hosting;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.Extensions.Options;

namespace Identity.Server.Account;

/// <summary>
/// "Forgot your password?": asks for an email address and answers the same page, status and time whether or not the
/// address is someone's (OWASP Forgot Password Cheat Sheet: no account enumeration). The operation does the same run
/// either way, and the answer waits out <see cref="ResponseFloor"/>, so what a reset link costs (a few more rows) does
/// not show in the timing. Throttled per client address (<c>Throttling:PasswordResetPerHour</c>, before this page
/// runs) and per address (<c>Throttling:PasswordResetPerAddressPerHour</c>, in the operation). Hidden without email.
/// </summary>
public sealed class ForgotPasswordModel(UserLinkOperations operations, IOptions<EmailOptions> email, IOptions<ThrottlingOptions> throttling)
    : PageModel
{
    /// <summary>Every answer takes at least this long: the work behind it (a few rows either way) stays well under it.</summary>
    internal static readonly TimeSpan ResponseFloor = TimeSpan.FromMilliseconds(250);

    [BindProperty]
    public InputModel Input { get; set; } = new();

    [BindProperty(SupportsGet = true)]
    public string? ReturnUrl { get; set; }

    public bool Sent { get; private set; }

    public IActionResult OnGet() => email.Value.Enabled ? Page() : NotFound();

    public async Task<IActionResult> OnPostAsync()
    {
        if (!email.Value.Enabled)
        {
            return NotFound();
        }

        if (!ModelState.IsValid)
        {
            return Page();
        }

        var started = Stopwatch.GetTimestamp();
        await operations.RequestPasswordResetAsync(Input.Email, throttling.Value.PasswordResetPerAddressPerHour,
            Actor.Anonymous(HttpContext.Connection.RemoteIpAddress?.ToString()), HttpContext.RequestAborted);
        var left = ResponseFloor - Stopwatch.GetElapsedTime(started);
        if (left > TimeSpan.Zero)
        {
            await Task.Delay(left, HttpContext.RequestAborted);
        }

        Sent = true;
        return Page();
    }

    public sealed class InputModel
    {
        [Required, EmailAddress, StringLength(256)]
        [Display(Name = "Email")]
        public string Email { get; set; } = "";
    }
}
