using System.Security.Cryptography;
using Identity.Core.Keys;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.IdentityModel.Tokens;

namespace Identity.Server.Keys;

/// <summary>
/// The crypto of the token keys: which algorithms there are, new private material, and its protection at rest by data
/// protection (whose own key ring is in the same database, itself protected as <c>Hosting/KeyRingProtection</c> says).
/// Nothing here knows rows' dates or the database.
/// </summary>
public sealed class SigningKeyMaterial(IDataProtectionProvider dataProtection)
{
    private const string Purpose = "Identity.SigningKeys.v1";

    /// <summary>
    /// ID tokens (RS256), access tokens (ES256), encryption of codes and refresh tokens (A256KW), from whose material the
    /// HS256 key that signs those internal tokens is derived (<see cref="InternalSigningKey"/>).
    /// </summary>
    public static readonly IReadOnlyList<string> Algorithms = ["RS256", "ES256", "A256KW"];

    /// <summary>HKDF's <c>info</c> for the internal-token signing key: binds the derived key to this one use (RFC 5869 §3.2).</summary>
    private static readonly byte[] InternalSigningInfo = "Identity.InternalTokens.HS256.v1"u8.ToArray();

    private readonly IDataProtector _protector = dataProtection.CreateProtector(Purpose);

    /// <summary>A new key of <paramref name="algorithm"/>: its <c>kid</c> and its private material, protected.</summary>
    public (string KeyId, string ProtectedMaterial) Create(string algorithm)
    {
        byte[] material = algorithm switch
        {
            "RS256" => ExportAndDispose(RSA.Create(2048)),
            "ES256" => ExportAndDispose(ECDsa.Create(ECCurve.NamedCurves.nistP256)),
            "A256KW" => RandomNumberGenerator.GetBytes(32),
            _ => throw new InvalidOperationException($"Unknown key algorithm {algorithm}."),
        };

        return (Base64UrlEncoder.Encode(RandomNumberGenerator.GetBytes(12)), Convert.ToBase64String(_protector.Protect(material)));

        static byte[] ExportAndDispose(AsymmetricAlgorithm key)
        {
            using (key)
            {
                return key.ExportPkcs8PrivateKey();
            }
        }
    }

    /// <summary>
    /// The stored key decrypted: signing credentials for RS256 and ES256; for A256KW, encrypting credentials and the
    /// internal-token signing credentials derived from the same material.
    /// </summary>
    public (SigningCredentials? Signing, EncryptingCredentials? Encrypting, SigningCredentials? InternalSigning) Open(SigningKey row)
    {
        byte[] material;
        try
        {
            material = _protector.Unprotect(Convert.FromBase64String(row.ProtectedMaterial));
        }
        catch (CryptographicException ex)
        {
            throw new InvalidOperationException(
                $"The {row.Algorithm} key {row.KeyId} cannot be decrypted: the data-protection key ring that protects it is not readable " +
                "by this server. If the ring's certificate was replaced, keep the old one under DataProtection:PreviousCertificates; " +
                "every replica needs the same DataProtection settings.", ex);
        }

        switch (row.Algorithm)
        {
            case "RS256":
                var rsa = RSA.Create();
                rsa.ImportPkcs8PrivateKey(material, out _);
                return (new SigningCredentials(new RsaSecurityKey(rsa) { KeyId = row.KeyId }, SecurityAlgorithms.RsaSha256), null, null);
            case "ES256":
                var ec = ECDsa.Create();
                ec.ImportPkcs8PrivateKey(material, out _);
                return (new SigningCredentials(new ECDsaSecurityKey(ec) { KeyId = row.KeyId }, SecurityAlgorithms.EcdsaSha256), null, null);
            case "A256KW":
                return (null,
                    new EncryptingCredentials(AesKeyWrapFactory.Attach(new SymmetricSecurityKey(material) { KeyId = row.KeyId }),
                        SecurityAlgorithms.Aes256KW, SecurityAlgorithms.Aes256CbcHmacSha512),
                    new SigningCredentials(InternalSigningKey(material, row.KeyId), SecurityAlgorithms.HmacSha256));
            default:
                throw new InvalidOperationException($"Unknown key algorithm {row.Algorithm} in slot {row.Slot}.");
        }
    }

    /// <summary>
    /// The HS256 key that signs the tokens only the authority reads (codes, refresh tokens: decision 0090), derived from
    /// an A256KW key's material by HKDF-SHA256 (RFC 5869) with its own <c>info</c>, so it is never the encryption key
    /// itself. Every replica derives the same key from the shared row, and it rotates and retires with that row. Its
    /// <c>kid</c> is the A256KW key's with <c>.hs</c> appended; it is never published.
    /// </summary>
    private static SymmetricSecurityKey InternalSigningKey(byte[] encryptionMaterial, string encryptionKeyId) =>
        new(HKDF.DeriveKey(HashAlgorithmName.SHA256, encryptionMaterial, 32, salt: [], info: InternalSigningInfo))
        {
            KeyId = encryptionKeyId + ".hs",
        };
}
