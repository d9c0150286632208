using System.ComponentModel.DataAnnotations;

namespace Identity.Server.Hosting;

/// <summary>
/// The <c>Throttling</c> configuration section: per-client-address limits on password sign-in (<c>POST /Account/Login</c>)
/// and on the token endpoint (<c>POST /connect/token</c>). They slow credential stuffing from one address down without
/// locking out the users it targets, who sign in from elsewhere (per-user lockout is the account policy's).
/// </summary>
public sealed class ThrottlingOptions
{
    public const string SectionName = "Throttling";

    /// <summary>Off: no request is throttled (the limits are still validated).</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>Sign-in attempts per client address over any sliding minute.</summary>
    [Range(1, 10_000, ErrorMessage = "Throttling:SignInPerMinute must be from 1 to 10000.")]
    public int SignInPerMinute { get; set; } = 20;

    /// <summary>Token requests per client address and second (a bucket of this size, refilled every second).</summary>
    [Range(1, 1_000_000, ErrorMessage = "Throttling:TokenPerSecond must be from 1 to 1000000.")]
    public int TokenPerSecond { get; set; } = 200;

    /// <summary>Password-reset requests (<c>POST /Account/ForgotPassword</c>) per client address over any sliding hour.</summary>
    [Range(1, 10_000, ErrorMessage = "Throttling:PasswordResetPerHour must be from 1 to 10000.")]
    public int PasswordResetPerHour { get; set; } = 20;

    /// <summary>Reset links sent to one address per hour, whoever asks (more requests are answered alike, and send nothing).</summary>
    [Range(1, 1_000, ErrorMessage = "Throttling:PasswordResetPerAddressPerHour must be from 1 to 1000.")]
    public int PasswordResetPerAddressPerHour { get; set; } = 3;

    /// <summary>
    /// Never throttle loopback clients (127.0.0.0/8, ::1): for load benchmarks and tests on one machine. Off by
    /// default, because behind a reverse proxy on the same host without forwarded headers configured, every client
    /// is loopback, and the throttle would silently be off.
    /// </summary>
    public bool ExemptLoopback { get; set; }
}
