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

    /// <summary>ID tokens (RS256), access and internal tokens (ES256), encryption of codes and refresh tokens (A256KW).</summary>
    public static readonly IReadOnlyList<string> Algorithms = ["RS256", "ES256", "A256KW"];

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

    /// <summary>The stored key decrypted: signing credentials for RS256 and ES256, encrypting credentials for A256KW.</summary>
    public (SigningCredentials? Signing, EncryptingCredentials? Encrypting) Open(SigningKey row)
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
                return (new SigningCredentials(new RsaSecurityKey(rsa) { KeyId = row.KeyId }, SecurityAlgorithms.RsaSha256), null);
            case "ES256":
                var ec = ECDsa.Create();
                ec.ImportPkcs8PrivateKey(material, out _);
                return (new SigningCredentials(new ECDsaSecurityKey(ec) { KeyId = row.KeyId }, SecurityAlgorithms.EcdsaSha256), null);
            case "A256KW":
                return (null, new EncryptingCredentials(
                    new SymmetricSecurityKey(material) { KeyId = row.KeyId },
                    SecurityAlgorithms.Aes256KW, SecurityAlgorithms.Aes256CbcHmacSha512));
            default:
                throw new InvalidOperationException($"Unknown key algorithm {row.Algorithm} in slot {row.Slot}.");
        }
    }
}
