using System.ComponentModel.DataAnnotations;

namespace Identity.Server.Account;

/// <summary>
/// The <c>Session</c> configuration section: the SSO session. (Refresh-token reuse is decided per client:
/// <see cref="Clients.ClientDefinition.RefreshTokenReuseLeeway"/>.)
/// </summary>
public sealed class SsoSessionOptions
{
    public const string SectionName = "Session";

    /// <summary>Lifetime of the SSO session cookie (sliding).</summary>
    [Range(typeof(TimeSpan), "00:05:00", "30.00:00:00")]
    public TimeSpan SessionLifetime { get; set; } = TimeSpan.FromHours(8);
}
