namespace Identity.Core.Keys;

/// <summary>
/// An asymmetric signing key or the symmetric token-encryption key, shared by every replica through the database.
/// The private material is stored protected by ASP.NET Core data protection, whose own key ring lives in the same database.
/// </summary>
public sealed class SigningKey
{
    /// <summary>
    /// Algorithm and generation, such as <c>ES256/1</c>: the primary key makes replicas that start or rotate at the same
    /// moment agree on one key per generation (the loser of the insert race reloads the winner's key).
    /// </summary>
    public required string Slot { get; set; }

    /// <summary>The JWK <c>kid</c> published in the JWKS.</summary>
    public required string KeyId { get; set; }

    /// <summary><c>ES256</c>, <c>RS256</c> or <c>A256KW</c> (encryption).</summary>
    public required string Algorithm { get; set; }

    public required string ProtectedMaterial { get; set; }

    /// <summary>From this date the key is published in the JWKS (and accepted), before it signs anything.</summary>
    public DateTimeOffset CreatedAt { get; set; }

    /// <summary>
    /// From this date the key signs (or encrypts) new tokens, taking over from the previous generation;
    /// <c>null</c> for keys created before rotation existed: active since <see cref="CreatedAt"/>.
    /// </summary>
    public DateTimeOffset? ActivatesAt { get; set; }

    /// <summary>From this date the key is no longer published nor accepted, and its row is deleted.</summary>
    public DateTimeOffset? RetiredAt { get; set; }
}
