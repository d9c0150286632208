using System.ComponentModel.DataAnnotations;

namespace Identity.Server.Keys;

/// <summary>
/// The <c>Keys</c> configuration section: when the token keys are replaced. Every key goes through three stages:
/// published ahead of use (in the JWKS, accepted, not yet signing), active (signs new tokens), then previous
/// (still published and accepted until every token it signed has expired), after which it is deleted.
/// </summary>
public sealed class KeyRotationOptions
{
    public const string SectionName = "Keys";

    /// <summary>Replace each key automatically after it has been active this long. Off: keys are replaced only through the admin API.</summary>
    public bool AutomaticRotation { get; set; } = true;

    /// <summary>How long a key signs before the next one takes over.</summary>
    [Range(typeof(TimeSpan), "1.00:00:00", "730.00:00:00")]
    public TimeSpan RotationPeriod { get; set; } = TimeSpan.FromDays(90);

    /// <summary>
    /// How long the next key is published in the JWKS before it signs, so that relying parties which cache the
    /// JWKS (commonly up to a day) already know it when the first token it signed reaches them.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:00", "30.00:00:00")]
    public TimeSpan PublishAhead { get; set; } = TimeSpan.FromDays(2);

    /// <summary>
    /// How often each replica reads the keys from the database and checks the schedule (a few small queries): a key
    /// created or revoked by another replica (or through the admin API) is used everywhere after at most this long.
    /// Scheduled keys are published <see cref="PublishAhead"/> before they sign, at least twice this interval, so every
    /// replica holds a key before any token made with it reaches it; after a rotation on demand the other replicas
    /// may refuse, for up to this long, tokens signed or encrypted with the new key.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:00.050", "00:10:00")]
    public TimeSpan CheckInterval { get; set; } = TimeSpan.FromSeconds(10);
}
