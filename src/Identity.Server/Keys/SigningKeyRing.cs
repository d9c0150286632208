using System.Security.Cryptography;
using Identity.Core.Data;
using Identity.Core.Keys;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.EntityFrameworkCore;
using Microsoft.IdentityModel.Tokens;

namespace Identity.Server.Keys;

/// <summary>
/// The token keys every replica shares: created on first start if absent, stored in the database
/// (private material protected by data protection, whose key ring is in the same database), loaded at start.
/// </summary>
public sealed class SigningKeyRing(IDataProtectionProvider dataProtection, ILogger<SigningKeyRing> logger)
{
    private const string Purpose = "Identity.SigningKeys.v1";

    // One slot per algorithm: the slot is the primary key, so two replicas starting at once on an empty
    // database cannot both create a key; the loser of the insert race reloads the winner's key.
    private static readonly string[] Slots = ["RS256/1", "ES256/1", "A256KW/1"];

    private readonly IDataProtector _protector = dataProtection.CreateProtector(Purpose);
    private volatile LoadedKeys? _keys;

    public LoadedKeys Keys => _keys ?? throw new InvalidOperationException(
        "The signing keys are not loaded: the server must initialise its store before it serves requests.");

    public async Task InitializeAsync(AuthorityDbContext db, CancellationToken cancellationToken)
    {
        foreach (var slot in Slots)
        {
            if (await db.SigningKeys.AsNoTracking().AnyAsync(k => k.Slot == slot, cancellationToken))
            {
                continue;
            }

            var key = CreateKey(slot);
            db.SigningKeys.Add(key);
            try
            {
                await db.SaveChangesAsync(cancellationToken);
                logger.LogInformation("Created {Algorithm} key {KeyId}", key.Algorithm, key.KeyId);
            }
            catch (DbUpdateException)
            {
                // Another replica created this slot first: use its key.
                db.ChangeTracker.Clear();
            }
        }

        var rows = await db.SigningKeys.AsNoTracking()
            .Where(k => k.RetiredAt == null)
            .ToListAsync(cancellationToken);
        _keys = Load(rows);
    }

    private SigningKey CreateKey(string slot)
    {
        var algorithm = slot[..slot.IndexOf('/', StringComparison.Ordinal)];
        byte[] material = algorithm switch
        {
            "RS256" => ExportAndDispose(RSA.Create(2048)),
            "ES256" => ExportAndDispose(ECDsa.Create(ECCurve.NamedCurves.nistP256)),
            "A256KW" => RandomNumberGenerator.GetBytes(32),
            _ => throw new InvalidOperationException($"Unknown key algorithm {algorithm}."),
        };

        return new SigningKey
        {
            Slot = slot,
            Algorithm = algorithm,
            KeyId = Base64UrlEncoder.Encode(RandomNumberGenerator.GetBytes(12)),
            ProtectedMaterial = Convert.ToBase64String(_protector.Protect(material)),
            CreatedAt = DateTimeOffset.UtcNow,
        };

        static byte[] ExportAndDispose(AsymmetricAlgorithm key)
        {
            using (key)
            {
                return key.ExportPkcs8PrivateKey();
            }
        }
    }

    private LoadedKeys Load(List<SigningKey> rows)
    {
        SigningCredentials? rsa = null, ec = null;
        EncryptingCredentials? encryption = null;
        foreach (var row in rows)
        {
            var material = _protector.Unprotect(Convert.FromBase64String(row.ProtectedMaterial));
            switch (row.Algorithm)
            {
                case "RS256":
                    var r = RSA.Create();
                    r.ImportPkcs8PrivateKey(material, out _);
                    rsa = new SigningCredentials(new RsaSecurityKey(r) { KeyId = row.KeyId }, SecurityAlgorithms.RsaSha256);
                    break;
                case "ES256":
                    var e = ECDsa.Create();
                    e.ImportPkcs8PrivateKey(material, out _);
                    ec = new SigningCredentials(new ECDsaSecurityKey(e) { KeyId = row.KeyId }, SecurityAlgorithms.EcdsaSha256);
                    break;
                case "A256KW":
                    encryption = new EncryptingCredentials(
                        new SymmetricSecurityKey(material) { KeyId = row.KeyId },
                        SecurityAlgorithms.Aes256KW, SecurityAlgorithms.Aes256CbcHmacSha512);
                    break;
            }
        }

        return new LoadedKeys(
            rsa ?? throw new InvalidOperationException("No RS256 key in the store."),
            ec ?? throw new InvalidOperationException("No ES256 key in the store."),
            encryption ?? throw new InvalidOperationException("No token-encryption key in the store."));
    }
}

/// <param name="Rs256">Signs ID tokens: RS256 is the OpenID Connect default (Core 1.0 §15.1) every relying party accepts.</param>
/// <param name="Es256">Signs access tokens by default: one P-256 signature costs about a twelfth of an RSA-2048 one.</param>
/// <param name="Encryption">Encrypts OpenIddict's internal tokens (codes, refresh tokens); access tokens stay signed JWTs.</param>
public sealed record LoadedKeys(SigningCredentials Rs256, SigningCredentials Es256, EncryptingCredentials Encryption);
