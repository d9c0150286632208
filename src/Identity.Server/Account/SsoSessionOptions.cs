using System.ComponentModel.DataAnnotations;

namespace Identity.Server.Account;

/// <summary>The <c>SignIn</c> configuration section: the SSO session and refresh-token reuse.</summary>
public sealed class SsoSessionOptions
{
    public const string SectionName = "Session";

    /// <summary>Lifetime of the SSO session cookie (sliding).</summary>
    [Range(typeof(TimeSpan), "00:05:00", "30.00:00:00")]
    public TimeSpan SessionLifetime { get; set; } = TimeSpan.FromHours(8);

    /// <summary>
    /// A refresh token presented again within this delay (a client retrying after a lost response) gets new
    /// tokens; after it, reuse is treated as theft and revokes the whole chain (RFC 9700 §4.14.2).
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:00", "00:01:00")]
    public TimeSpan RefreshTokenReuseLeeway { get; set; } = TimeSpan.FromSeconds(10);
}
