using System.Net;
using Microsoft.Extensions.Options;
using MimeKit;

namespace Identity.Server.Email;

/// <summary>How the server reaches its mail server. Without <see cref="Host"/>, nothing is sent and the pages that need email are hidden.</summary>
public sealed class EmailOptions
{
    public const string SectionName = "Email";

    /// <summary>The SMTP server; unset: no email (forgot password, emailed invitations and verification are off).</summary>
    public string? Host { get; set; }

    public int Port { get; set; } = 587;

    /// <summary><c>StartTls</c> (required, port 587), <c>Tls</c> (implicit TLS, port 465) or <c>None</c> (a loopback relay only).</summary>
    public EmailSecurity Security { get; set; } = EmailSecurity.StartTls;

    /// <summary>The PEM file of the CA that issues the mail server's certificate, trusted for it alone; default: the system's roots.</summary>
    public string? CaCertificatePath { get; set; }

    public string? UserName { get; set; }

    /// <summary>The environment variable holding the SMTP password (never the password itself in configuration).</summary>
    public string? PasswordEnvironmentVariable { get; set; }

    /// <summary>The sender, e.g. <c>Identity &lt;no-reply@example.com&gt;</c>.</summary>
    public string? From { get; set; }

    /// <summary>The name the emails speak of (the product people sign in to).</summary>
    public string ProductName { get; set; } = "Identity";

    /// <summary>Where the emailed links point (the authority's public address); default <c>Oidc:Issuer</c>. Never the request's Host header.</summary>
    public Uri? PublicBaseUrl { get; set; }

    /// <summary>One SMTP command's time limit.</summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How often the worker looks for due emails.</summary>
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>The first retry's delay; each further one doubles, up to <see cref="MaxRetryDelay"/>.</summary>
    public TimeSpan RetryDelay { get; set; } = TimeSpan.FromSeconds(10);

    public TimeSpan MaxRetryDelay { get; set; } = TimeSpan.FromMinutes(30);

    /// <summary>How many times the mail server may refuse one message before it is given up (a server that is down counts against none).</summary>
    public int MaxAttempts { get; set; } = 10;

    /// <summary>How long a password-reset link works (NIST SP 800-63B and OWASP: short).</summary>
    public TimeSpan PasswordResetLifetime { get; set; } = TimeSpan.FromMinutes(30);

    /// <summary>How long an invitation link works.</summary>
    public TimeSpan InvitationLifetime { get; set; } = TimeSpan.FromDays(7);

    /// <summary>How long an email-verification link works.</summary>
    public TimeSpan VerificationLifetime { get; set; } = TimeSpan.FromDays(2);

    public bool Enabled => !string.IsNullOrWhiteSpace(Host);
}

public enum EmailSecurity
{
    StartTls,
    Tls,
    None,
}

/// <summary>Every rule across the <c>Email:*</c> keys, checked at start; the message names the key.</summary>
internal sealed class EmailOptionsValidator(IConfiguration configuration) : IValidateOptions<EmailOptions>
{
    public ValidateOptionsResult Validate(string? name, EmailOptions options)
    {
        var errors = new List<string>();
        if (!options.Enabled)
        {
            if (configuration.GetSection(EmailOptions.SectionName).GetChildren().Any(c => c.Key is "From" or "UserName" or "Port" or "Security"))
            {
                errors.Add("Email:Host is required when other Email:* keys are set.");
            }

            return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
        }

        if (options.Port is < 1 or > 65535)
        {
            errors.Add("Email:Port must be 1-65535.");
        }

        if (string.IsNullOrWhiteSpace(options.From) || !MailboxAddress.TryParse(options.From, out _))
        {
            errors.Add("Email:From is required: a mailbox such as 'Identity <no-reply@example.com>'.");
        }

        if (options.Security == EmailSecurity.None && !IsLoopback(options.Host!))
        {
            errors.Add("Email:Security None is for a relay on this machine only (Email:Host a loopback address): use StartTls or Tls.");
        }

        if (options.CaCertificatePath is { } ca && !File.Exists(ca))
        {
            errors.Add($"Email:CaCertificatePath: no file at {ca}.");
        }

        if (options.UserName is not null != options.PasswordEnvironmentVariable is not null)
        {
            errors.Add("Email:UserName and Email:PasswordEnvironmentVariable go together.");
        }
        else if (options.PasswordEnvironmentVariable is { } variable && string.IsNullOrEmpty(Environment.GetEnvironmentVariable(variable)))
        {
            errors.Add($"Email:PasswordEnvironmentVariable: the variable {variable} is not set.");
        }

        var links = LinkBase(options, configuration);
        if (links is null || !links.IsAbsoluteUri || links.Scheme is not ("https" or "http"))
        {
            errors.Add("Email:PublicBaseUrl (or Oidc:Issuer) is required: the absolute address the emailed links point to.");
        }

        if (options.Timeout <= TimeSpan.Zero || options.PollInterval <= TimeSpan.Zero || options.RetryDelay <= TimeSpan.Zero
            || options.MaxRetryDelay < options.RetryDelay)
        {
            errors.Add("Email:Timeout, Email:PollInterval and Email:RetryDelay must be positive, Email:MaxRetryDelay at least Email:RetryDelay.");
        }

        if (options.MaxAttempts < 1)
        {
            errors.Add("Email:MaxAttempts must be at least 1.");
        }

        if (options.PasswordResetLifetime < TimeSpan.FromMinutes(1) || options.PasswordResetLifetime > TimeSpan.FromDays(1)
            || options.InvitationLifetime < TimeSpan.FromMinutes(1) || options.InvitationLifetime > TimeSpan.FromDays(30)
            || options.VerificationLifetime < TimeSpan.FromMinutes(1) || options.VerificationLifetime > TimeSpan.FromDays(30))
        {
            errors.Add("Email:PasswordResetLifetime must be 1 min-1 day; Email:InvitationLifetime and Email:VerificationLifetime 1 min-30 days.");
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }

    /// <summary>Where links point: <c>Email:PublicBaseUrl</c>, else <c>Oidc:Issuer</c>.</summary>
    internal static Uri? LinkBase(EmailOptions options, IConfiguration configuration) =>
        options.PublicBaseUrl ?? (Uri.TryCreate(configuration["Oidc:Issuer"], UriKind.Absolute, out var issuer) ? issuer : null);

    private static bool IsLoopback(string host) =>
        string.Equals(host, "localhost", StringComparison.OrdinalIgnoreCase) || (IPAddress.TryParse(host, out var address) && IPAddress.IsLoopback(address));
}
