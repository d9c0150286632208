namespace Identity.Core.Keys;

/// <summary>
/// An asymmetric signing key or the symmetric token-encryption key, shared by every replica through the database.
/// The private material is stored protected by ASP.NET Core data protection, whose own key ring lives in the same database.
/// </summary>
public sealed class SigningKey
{
    /// <summary>Slot name such as <c>ES256/1</c>: the primary key makes concurrent first starts agree on one key per slot.</summary>
    public required string Slot { get; set; }

    /// <summary>The JWK <c>kid</c> published in the JWKS.</summary>
    public required string KeyId { get; set; }

    /// <summary><c>ES256</c>, <c>RS256</c> or <c>A256KW</c> (encryption).</summary>
    public required string Algorithm { get; set; }

    public required string ProtectedMaterial { get; set; }

    public DateTimeOffset CreatedAt { get; set; }

    /// <summary>After this date the key no longer signs; it stays published until <see cref="RetiredAt"/>.</summary>
    public DateTimeOffset? RetiredAt { get; set; }
}
