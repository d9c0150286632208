using System.Data.Common;
using System.Security.Cryptography;
using Identity.Core.Data;
using Identity.Core.Keys;
using Identity.Server.Connect;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.Tokens;

namespace Identity.Server.Keys;

/// <summary>
/// The token keys every replica shares, stored in the database (private material protected by data protection, whose
/// key ring is in the same database) and replaced on a schedule (<see cref="KeyRotationOptions"/>). Each algorithm has
/// generations <c>RS256/1</c>, <c>RS256/2</c>, …: the next one is published ahead of use, then signs, while the previous
/// one stays published and accepted until every token it signed has expired (OpenID Connect Core 1.0 §10.1.1: keys are
/// rotated by publishing the new key in the JWKS; relying parties fetch the JWKS again on an unknown <c>kid</c>).
/// Which key is active is decided by the dates stored with the keys, so replicas agree without talking to each other.
/// </summary>
public sealed class SigningKeyRing(
    IDataProtectionProvider dataProtection,
    TimeProvider time,
    IOptions<OidcOptions> oidc,
    IOptionsMonitor<KeyRotationOptions> rotation,
    IServiceScopeFactory scopes,
    ILogger<SigningKeyRing> logger)
{
    private const string Purpose = "Identity.SigningKeys.v1";

    /// <summary>At most one read of the keys per this interval on demand (unknown <c>kid</c>, JWKS requests).</summary>
    private static readonly TimeSpan OnDemandInterval = TimeSpan.FromSeconds(5);

    private long _lastLoad = long.MinValue / 2;

    /// <summary>ID tokens (RS256), access and internal tokens (ES256), encryption of codes and refresh tokens (A256KW).</summary>
    public static readonly IReadOnlyList<string> Algorithms = ["RS256", "ES256", "A256KW"];

    private readonly IDataProtector _protector = dataProtection.CreateProtector(Purpose);
    // The keys loaded and what they mean at one instant, swapped as one so that a refresh is never undone by a reader.
    private KeyState? _state;

    /// <summary>The keys that sign and encrypt new tokens now.</summary>
    public LoadedKeys Keys => View().Active;

    /// <summary>Every key a token may have been signed with: the active ones, the next ones and the previous ones.</summary>
    public IReadOnlyList<SecurityKey> VerificationKeys => View().Verification;

    /// <summary>Every token-encryption key whose tokens may still be presented.</summary>
    public IReadOnlyList<SecurityKey> DecryptionKeys => View().Decryption;

    /// <summary>The signing keys the JWKS publishes (public parts only are ever written out).</summary>
    public IReadOnlyList<RingKey> PublishedKeys => View().Published;

    /// <summary>
    /// Every key still accepted, with its stage now: <c>next</c> (published, not signing yet), <c>active</c> (signs new
    /// tokens) or <c>previous</c> (accepted until it retires). For the admin API.
    /// </summary>
    public IReadOnlyList<(RingKey Key, string Stage)> Stages => View().Stages;

    /// <summary>
    /// How long a key stays accepted after the next one took over: the longest a token it signed can live (a refresh
    /// token, or a day for access tokens, whichever is longer), plus a day for relying parties' JWKS caches.
    /// </summary>
    public TimeSpan Retention => TimeSpan.FromDays(1) + TimeSpan.FromTicks(Math.Max(oidc.Value.RefreshTokenLifetime.Ticks, TimeSpan.FromDays(1).Ticks));

    /// <summary>First start: one key of each algorithm, active at once; then the ring is loaded.</summary>
    public async Task InitializeAsync(AuthorityDbContext db, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        foreach (var algorithm in Algorithms)
        {
            if (await db.SigningKeys.AsNoTracking().AnyAsync(k => k.Algorithm == algorithm, cancellationToken))
            {
                continue;
            }

            var key = CreateKey(algorithm, generation: 1, createdAt: now, activatesAt: now);
            db.SigningKeys.Add(key);
            if (await TrySaveAsync(db, cancellationToken))
            {
                logger.LogInformation("Created {Algorithm} key {KeyId}", key.Algorithm, key.KeyId);
            }
        }

        await RefreshAsync(db, cancellationToken);
    }

    /// <summary>
    /// What every replica does every <see cref="KeyRotationOptions.CheckInterval"/>: delete keys past retirement,
    /// create the next generation when one is due (if automatic rotation is on), and load what the database holds.
    /// </summary>
    public async Task MaintainAsync(AuthorityDbContext db, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        await DeleteRetiredAsync(db, now, cancellationToken);

        var settings = rotation.CurrentValue;
        if (settings.AutomaticRotation)
        {
            var keys = await db.SigningKeys.ToListAsync(cancellationToken);
            foreach (var algorithm in Algorithms)
            {
                var newest = keys.Where(k => k.Algorithm == algorithm).MaxBy(Generation);
                if (newest is null)
                {
                    continue;
                }

                var due = Activation(newest) + settings.RotationPeriod;
                if (now < due - settings.PublishAhead)
                {
                    continue;
                }

                var activatesAt = Max(due, now + settings.PublishAhead);
                var next = CreateKey(algorithm, Generation(newest) + 1, now, activatesAt);
                newest.RetiredAt = activatesAt + Retention;
                db.SigningKeys.Add(next);
                if (!await TrySaveAsync(db, cancellationToken))
                {
                    break; // another replica rotates at this moment (the rows read are no longer tracked): next check
                }

                logger.LogInformation(
                    "Created {Algorithm} key {KeyId}: published now, signs from {ActivatesAt:O}; key {PreviousKeyId} retires at {RetiresAt:O}",
                    algorithm, next.KeyId, activatesAt, newest.KeyId, newest.RetiredAt);
            }
        }

        await RefreshAsync(db, cancellationToken);
    }

    /// <summary>
    /// Replaces the keys of <paramref name="algorithms"/> at once (a suspected compromise, or a manual rotation).
    /// The new keys sign from now. The previous keys stay accepted for <see cref="Retention"/>, or are deleted at once
    /// with <paramref name="revokePrevious"/>: every token they signed or encrypted stops being accepted then.
    /// </summary>
    /// <returns><c>false</c> when another replica rotated the same generation at the same moment.</returns>
    public async Task<bool> RotateNowAsync(
        AuthorityDbContext db, IReadOnlyCollection<string> algorithms, bool revokePrevious, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var created = new List<SigningKey>();
        var all = await db.SigningKeys.ToListAsync(cancellationToken);
        foreach (var algorithm in algorithms)
        {
            var keys = all.Where(k => k.Algorithm == algorithm).ToList();
            var next = CreateKey(algorithm, keys.Count == 0 ? 1 : keys.Max(Generation) + 1, now, now);
            foreach (var previous in keys)
            {
                var retiresAt = revokePrevious ? now : now + Retention;
                previous.RetiredAt = previous.RetiredAt is { } existing && existing < retiresAt ? existing : retiresAt;
            }

            db.SigningKeys.Add(next);
            created.Add(next);
        }

        if (!await TrySaveAsync(db, cancellationToken))
        {
            return false;
        }

        foreach (var key in created)
        {
            logger.LogWarning("Rotated {Algorithm} keys on request: {KeyId} signs from now; previous keys {Fate}",
                key.Algorithm, key.KeyId, revokePrevious ? "revoked at once" : "retire after " + Retention);
        }

        await DeleteRetiredAsync(db, now, cancellationToken);
        await RefreshAsync(db, cancellationToken);
        return true;
    }

    /// <summary>Loads the keys the database holds now (reusing the ones already decrypted).</summary>
    public async Task RefreshAsync(AuthorityDbContext db, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var rows = await db.SigningKeys.AsNoTracking()
            .Where(k => k.RetiredAt == null || k.RetiredAt > now)
            .ToListAsync(cancellationToken);
        var known = (Volatile.Read(ref _state)?.Loaded ?? []).ToDictionary(k => k.KeyId, StringComparer.Ordinal);
        var loaded = rows
            .Select(row => known.TryGetValue(row.KeyId, out var decrypted) ? decrypted with { RetiredAt = row.RetiredAt } : Load(row))
            .OrderBy(k => k.Algorithm, StringComparer.Ordinal).ThenBy(k => k.Generation)
            .ToList();

        foreach (var algorithm in Algorithms)
        {
            if (!loaded.Any(k => k.Algorithm == algorithm))
            {
                throw new InvalidOperationException($"No {algorithm} key in the store: the server must initialise its store first.");
            }
        }

        Volatile.Write(ref _state, new KeyState(loaded, KeyView.Build(loaded, now)));
        Volatile.Write(ref _lastLoad, Environment.TickCount64);
    }

    /// <summary>
    /// Reads the keys again if the last read is older than a few seconds (at most one such read per interval, whoever
    /// asks): a JWKS request then shows a key another replica just created on demand, without waiting for
    /// <see cref="KeyRotationOptions.CheckInterval"/>.
    /// </summary>
    public async Task RefreshIfStaleAsync(CancellationToken cancellationToken)
    {
        var last = Volatile.Read(ref _lastLoad);
        var now = Environment.TickCount64;
        if (now - last < (long)OnDemandInterval.TotalMilliseconds || Interlocked.CompareExchange(ref _lastLoad, now, last) != last)
        {
            return;
        }

        try
        {
            await using var scope = scopes.CreateAsyncScope();
            await RefreshAsync(scope.ServiceProvider.GetRequiredService<AuthorityDbContext>(), cancellationToken);
        }
        catch (Exception ex) when (ex is DbException or InvalidOperationException or TimeoutException)
        {
            logger.LogWarning(ex, "Reading the token keys on demand failed; the loaded keys stay in use");
        }
    }

    /// <summary>
    /// The keys that may have signed (or encrypted) a token naming <paramref name="keyId"/>: when no loaded key has that
    /// id — a key another replica created by a rotation on demand, not read here yet — the keys are read again first
    /// (rate-limited as <see cref="RefreshIfStaleAsync"/>; a blocking read, on this rare path only).
    /// </summary>
    public IEnumerable<SecurityKey> KeysFor(string? keyId, bool decryption)
    {
        var keys = decryption ? DecryptionKeys : VerificationKeys;
        if (string.IsNullOrEmpty(keyId) || keys.Any(k => string.Equals(k.KeyId, keyId, StringComparison.Ordinal)))
        {
            return keys;
        }

        RefreshIfStaleAsync(CancellationToken.None).GetAwaiter().GetResult();
        return decryption ? DecryptionKeys : VerificationKeys;
    }

    private KeyView View()
    {
        var state = Volatile.Read(ref _state) ?? throw NotLoaded();
        var now = time.GetUtcNow();
        if (now < state.View.NextChange)
        {
            return state.View;
        }

        // A key activated or retired since: recompute from the same keys, unless a refresh replaced them meanwhile.
        var view = KeyView.Build(state.Loaded, now);
        Interlocked.CompareExchange(ref _state, state with { View = view }, state);
        return view;
    }

    private async Task DeleteRetiredAsync(AuthorityDbContext db, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var retired = await db.SigningKeys.Where(k => k.RetiredAt != null && k.RetiredAt <= now).ToListAsync(cancellationToken);
        if (retired.Count == 0)
        {
            return;
        }

        db.SigningKeys.RemoveRange(retired);
        if (await TrySaveAsync(db, cancellationToken))
        {
            foreach (var key in retired)
            {
                logger.LogInformation("Deleted retired {Algorithm} key {KeyId}", key.Algorithm, key.KeyId);
            }
        }
    }

    /// <summary>Saves; a replica that lost a race (the same generation inserted, or a row already deleted) gives way.</summary>
    private static async Task<bool> TrySaveAsync(AuthorityDbContext db, CancellationToken cancellationToken)
    {
        try
        {
            await db.SaveChangesAsync(cancellationToken);
            return true;
        }
        catch (DbUpdateException)
        {
            db.ChangeTracker.Clear();
            return false;
        }
    }

    private SigningKey CreateKey(string algorithm, int generation, DateTimeOffset createdAt, DateTimeOffset activatesAt)
    {
        byte[] material = algorithm switch
        {
            "RS256" => ExportAndDispose(RSA.Create(2048)),
            "ES256" => ExportAndDispose(ECDsa.Create(ECCurve.NamedCurves.nistP256)),
            "A256KW" => RandomNumberGenerator.GetBytes(32),
            _ => throw new InvalidOperationException($"Unknown key algorithm {algorithm}."),
        };

        return new SigningKey
        {
            Slot = $"{algorithm}/{generation}",
            Algorithm = algorithm,
            KeyId = Base64UrlEncoder.Encode(RandomNumberGenerator.GetBytes(12)),
            ProtectedMaterial = Convert.ToBase64String(_protector.Protect(material)),
            CreatedAt = createdAt,
            ActivatesAt = activatesAt,
        };

        static byte[] ExportAndDispose(AsymmetricAlgorithm key)
        {
            using (key)
            {
                return key.ExportPkcs8PrivateKey();
            }
        }
    }

    private RingKey Load(SigningKey row)
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

        SigningCredentials? signing = null;
        EncryptingCredentials? encrypting = null;
        switch (row.Algorithm)
        {
            case "RS256":
                var rsa = RSA.Create();
                rsa.ImportPkcs8PrivateKey(material, out _);
                signing = new SigningCredentials(new RsaSecurityKey(rsa) { KeyId = row.KeyId }, SecurityAlgorithms.RsaSha256);
                break;
            case "ES256":
                var ec = ECDsa.Create();
                ec.ImportPkcs8PrivateKey(material, out _);
                signing = new SigningCredentials(new ECDsaSecurityKey(ec) { KeyId = row.KeyId }, SecurityAlgorithms.EcdsaSha256);
                break;
            case "A256KW":
                encrypting = new EncryptingCredentials(
                    new SymmetricSecurityKey(material) { KeyId = row.KeyId },
                    SecurityAlgorithms.Aes256KW, SecurityAlgorithms.Aes256CbcHmacSha512);
                break;
            default:
                throw new InvalidOperationException($"Unknown key algorithm {row.Algorithm} in slot {row.Slot}.");
        }

        return new RingKey(row.Algorithm, Generation(row), row.KeyId, row.CreatedAt, Activation(row), row.RetiredAt, signing, encrypting);
    }

    private static int Generation(SigningKey key) =>
        int.TryParse(key.Slot.AsSpan(key.Slot.IndexOf('/', StringComparison.Ordinal) + 1), out var generation) ? generation : 0;

    private static DateTimeOffset Activation(SigningKey key) => key.ActivatesAt ?? key.CreatedAt;

    private static DateTimeOffset Max(DateTimeOffset a, DateTimeOffset b) => a > b ? a : b;

    private static InvalidOperationException NotLoaded() => new(
        "The signing keys are not loaded: the server must initialise its store before it serves requests.");

    private sealed record KeyState(IReadOnlyList<RingKey> Loaded, KeyView View);

    /// <summary>What the loaded keys mean at one instant, kept until the next activation or retirement among them.</summary>
    private sealed record KeyView(
        LoadedKeys Active,
        SecurityKey[] Verification,
        SecurityKey[] Decryption,
        RingKey[] Published,
        (RingKey Key, string Stage)[] Stages,
        DateTimeOffset NextChange)
    {
        public static KeyView Build(IReadOnlyList<RingKey> keys, DateTimeOffset now)
        {
            var live = keys.Where(k => k.RetiredAt is not { } retired || retired > now).ToList();
            var nextChange = keys
                .SelectMany(k => new[] { k.ActivatesAt, k.RetiredAt ?? DateTimeOffset.MaxValue })
                .Where(at => at > now)
                .DefaultIfEmpty(DateTimeOffset.MaxValue)
                .Min();

            var signing = live.Where(k => k.Signing is not null).ToArray();
            RingKey[] active = [ActiveOf(live, "RS256", now), ActiveOf(live, "ES256", now), ActiveOf(live, "A256KW", now)];
            return new KeyView(
                new LoadedKeys(active[0].Signing!, active[1].Signing!, active[2].Encrypting!),
                signing.Select(k => k.Signing!.Key).ToArray(),
                live.Where(k => k.Encrypting is not null).Select(k => k.Encrypting!.Key).ToArray(),
                signing,
                live.Select(k => (k, active.Contains(k) ? "active" : k.ActivatesAt > now ? "next" : "previous")).ToArray(),
                nextChange);
        }

        /// <summary>
        /// The latest key already active; if none is yet (a replica whose clock lags the one that created the first
        /// keys), the earliest to activate.
        /// </summary>
        private static RingKey ActiveOf(List<RingKey> live, string algorithm, DateTimeOffset now)
        {
            var candidates = live.Where(k => k.Algorithm == algorithm).ToList();
            return candidates.Where(k => k.ActivatesAt <= now).MaxBy(k => (k.ActivatesAt, k.Generation))
                ?? candidates.MinBy(k => k.ActivatesAt)
                ?? throw new InvalidOperationException($"No {algorithm} key in the store.");
        }
    }
}

/// <summary>One key of the ring, decrypted.</summary>
public sealed record RingKey(
    string Algorithm,
    int Generation,
    string KeyId,
    DateTimeOffset CreatedAt,
    DateTimeOffset ActivatesAt,
    DateTimeOffset? RetiredAt,
    SigningCredentials? Signing,
    EncryptingCredentials? Encrypting);

/// <param name="Rs256">Signs ID tokens: RS256 is the OpenID Connect default (Core 1.0 §15.1) every relying party accepts.</param>
/// <param name="Es256">Signs access tokens by default: one P-256 signature costs about a twelfth of an RSA-2048 one.</param>
/// <param name="Encryption">Encrypts OpenIddict's internal tokens (codes, refresh tokens); access tokens stay signed JWTs.</param>
public sealed record LoadedKeys(SigningCredentials Rs256, SigningCredentials Es256, EncryptingCredentials Encryption);
