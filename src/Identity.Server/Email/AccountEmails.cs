using System.Globalization;
using System.Text.Encodings.Web;
using Identity.Core.Data;
using Identity.Core.Email;
using Identity.Core.Users;
using Microsoft.Extensions.Options;

namespace Identity.Server.Email;

/// <summary>
/// The emails' templates, plain text and HTML, each naming the product and, for a member of a customer account, the
/// account. Links are built on the configured public address, never on the request's Host header (a forged Host would
/// otherwise send a victim's reset link to the attacker's site).
/// </summary>
public sealed class AccountEmails(OutgoingEmail outgoing, IOptions<EmailOptions> options, IConfiguration configuration, AuthorityDbContext db)
    : IAccountEmails
{
    public const string ResetPage = "/Account/ResetPassword";
    public const string InvitationPage = "/Account/Invitation";
    public const string VerificationPage = "/Account/VerifyEmail";

    private readonly EmailOptions _options = options.Value;

    public bool Enabled => _options.Enabled;

    public TimeSpan LifetimeOf(string purpose) => purpose switch
    {
        UserLinkPurposes.PasswordReset => _options.PasswordResetLifetime,
        UserLinkPurposes.Invitation => _options.InvitationLifetime,
        _ => _options.VerificationLifetime,
    };

    public void Link(string purpose, ApplicationUser user, string address, string token, DateTimeOffset expiresAt)
    {
        var (page, subject, intro, action) = purpose switch
        {
            UserLinkPurposes.PasswordReset => (ResetPage, "Reset your password",
                "Someone asked to reset the password of your account. If it was not you, ignore this email: your password stays as it is.",
                "Choose a new password"),
            UserLinkPurposes.Invitation => (InvitationPage, "You are invited",
                "You have been invited to sign in. Open the link to choose your password.", "Accept the invitation"),
            _ => (VerificationPage, "Confirm your email address",
                "Confirm that this address is yours to use it for your account.", "Confirm this address"),
        };
        var link = new Uri(Base(), page.TrimStart('/') + "?token=" + Uri.EscapeDataString(token)).AbsoluteUri;
        var until = expiresAt.UtcDateTime.ToString("yyyy-MM-dd HH:mm 'UTC'", CultureInfo.InvariantCulture);
        Queue(address, purpose, user, subject, [intro, $"{action}: {link}", $"The link works once, until {until}."],
            [Encode(intro), $"<a href=\"{Encode(link)}\">{Encode(action)}</a>", Encode($"The link works once, until {until}.")]);
    }

    public void EmailChanging(ApplicationUser user, string oldAddress)
    {
        var notice = "The email address of your account is being changed to another one. If you did not ask for this, contact your administrator.";
        Queue(oldAddress, "email_change_notice", user, "Your email address is being changed", [notice], [Encode(notice)]);
    }

    public void PasswordWasReset(ApplicationUser user)
    {
        var notice = "The password of your account was reset, and every session ended. If it was not you, contact your administrator.";
        Queue(user.Email!, "password_reset_notice", user, "Your password was reset", [notice], [Encode(notice)]);
    }

    public void ResetNotAllowed(ApplicationUser user)
    {
        var notice = "Someone asked to reset the password of your account, but your account's policy does not allow resetting it yourself: ask your account's administrator. If it was not you, ignore this email.";
        Queue(user.Email!, "password_reset_not_allowed", user, "Password reset", [notice], [Encode(notice)]);
    }

    private void Queue(string to, string kind, ApplicationUser user, string subject, string[] lines, string[] htmlParagraphs)
    {
        var who = AccountName(user) is { } account ? $"{_options.ProductName} · {account}" : _options.ProductName;
        var text = string.Join("\n\n", lines.Prepend(who)) + "\n";
        var html = "<!DOCTYPE html><html><body>" + $"<p><strong>{Encode(who)}</strong></p>"
            + string.Concat(htmlParagraphs.Select(p => $"<p>{p}</p>")) + "</body></html>";
        outgoing.Queue(to, kind, user.Id, new EmailContent($"{subject} · {_options.ProductName}", text, html));
    }

    private string? AccountName(ApplicationUser user) =>
        user.Account?.Name ?? (user.AccountId is { } id ? db.Accounts.Where(a => a.Id == id).Select(a => a.Name).FirstOrDefault() : null);

    private Uri Base()
    {
        var root = EmailOptionsValidator.LinkBase(_options, configuration)!.AbsoluteUri;
        return new Uri(root.EndsWith('/') ? root : root + "/");
    }

    private static string Encode(string value) => HtmlEncoder.Default.Encode(value);
}
