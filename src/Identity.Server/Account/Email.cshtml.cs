using System.ComponentModel.DataAnnotations;
using Identity.Core.Audit;
using Identity.Core.Data;
using Identity.Core.Operations;
using Identity.Core.Users;
using Identity.Server.Email;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.Extensions.Options;

namespace Identity.Server.Account;

/// <summary>
/// The signed-in person's own address: whether it is verified, the address they are moving to, and a form to move to
/// another (the current password asked: a session cookie alone never moves an account). A verified address stays until
/// the new one's emailed link is confirmed, and is told of the change (<see cref="UserOperations.ChangeOwnEmailAsync"/>,
/// decision 0085). Without a mail server the page does not exist (404, signed in or not); otherwise a visitor who is not
/// signed in is sent to sign in.
/// </summary>
public sealed class EmailModel(
    UserManager<ApplicationUser> users,
    UserOperations operations,
    UserLinkOperations links,
    IOptions<EmailOptions> email,
    TimeProvider time) : PageModel
{
    /// <summary>Verification links one person may have sent within an hour (each an email to an address they chose).</summary>
    private const int ChangesPerHour = 5;

    [BindProperty]
    public InputModel Input { get; set; } = new();

    public string? Current { get; private set; }

    public bool Verified { get; private set; }

    public string? Pending { get; private set; }

    public async Task<IActionResult> OnGetAsync()
    {
        var user = email.Value.Enabled ? await users.GetUserAsync(User) : null;
        if (user is null)
        {
            return email.Value.Enabled ? Challenge() : NotFound();
        }

        await ReadAsync(user);
        return Page();
    }

    public async Task<IActionResult> OnPostAsync()
    {
        var user = email.Value.Enabled ? await users.GetUserAsync(User) : null;
        if (user is null)
        {
            return email.Value.Enabled ? Challenge() : NotFound();
        }

        if (ModelState.IsValid)
        {
            var (result, _) = await operations.ChangeOwnEmailAsync(user, Input.CurrentPassword, Input.NewEmail, ChangesPerHour,
                new Actor("user", user.Id, null, HttpContext.Connection.RemoteIpAddress?.ToString()), HttpContext.RequestAborted);
            foreach (var (field, messages) in result.Errors ?? new Dictionary<string, string[]>())
            {
                var key = field == "currentPassword" ? nameof(InputModel.CurrentPassword) : nameof(InputModel.NewEmail);
                foreach (var message in messages)
                {
                    ModelState.AddModelError($"{nameof(Input)}.{key}", message);
                }
            }

            if (result.Outcome == OperationOutcome.Stale)
            {
                ModelState.AddModelError("", "The account changed meanwhile: try again.");
            }

            if (result.Succeeded)
            {
                Input = new InputModel();
            }
        }

        Input.CurrentPassword = ""; // never echoed back
        await ReadAsync(user);
        return Page();
    }

    private async Task ReadAsync(ApplicationUser user)
    {
        Current = user.Email;
        Verified = user.EmailConfirmed;
        Pending = await links.PendingEmailAsync(user, time.GetUtcNow(), HttpContext.RequestAborted);
    }

    public sealed class InputModel
    {
        [Required, EmailAddress, StringLength(256)]
        [Display(Name = "New email address")]
        public string NewEmail { get; set; } = "";

        [Required, StringLength(512)]
        [DataType(DataType.Password)]
        [Display(Name = "Current password")]
        public string CurrentPassword { get; set; } = "";
    }
}
