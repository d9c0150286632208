using System.Data.Common;
using Identity.Core.Data;
using Identity.Core.Keys;
using Microsoft.IdentityModel.Tokens;

namespace Identity.Server.Keys;

/// <summary>
/// The token keys in use on this replica, as OpenIddict is given them (<see cref="KeyRingHandlers"/>,
/// <c>TokenSigningPolicy</c>) and the admin API shows them: the live rows of the <see cref="SigningKeyStore"/>,
/// decrypted once by <see cref="SigningKeyMaterial"/>, and what they mean now by <see cref="KeySchedule"/> (which
/// signs, which are published, which are accepted), recomputed when a key activates or retires.
/// </summary>
public sealed class SigningKeyRing(
    SigningKeyStore store,
    SigningKeyMaterial material,
    TimeProvider time,
    IServiceScopeFactory scopes,
    ILogger<SigningKeyRing> logger)
{
    /// <summary>At most one read of the keys per this interval on demand (unknown <c>kid</c>, JWKS requests).</summary>
    private static readonly TimeSpan OnDemandInterval = TimeSpan.FromSeconds(5);

    private long _lastLoad = long.MinValue / 2;

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

    /// <summary>Loads the keys the database holds now (reusing the ones already decrypted).</summary>
    public async Task RefreshAsync(AuthorityDbContext db, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var rows = await store.LiveAsync(db, now, cancellationToken);
        var known = (Volatile.Read(ref _state)?.Loaded ?? []).ToDictionary(k => k.KeyId, StringComparer.Ordinal);
        var loaded = rows
            .Select(row => known.TryGetValue(row.KeyId, out var decrypted) ? decrypted with { RetiredAt = row.RetiredAt } : Load(row))
            .OrderBy(k => k.Algorithm, StringComparer.Ordinal).ThenBy(k => k.Generation)
            .ToList();

        foreach (var algorithm in SigningKeyMaterial.Algorithms)
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
    /// The keys that may have signed (or encrypted) a token naming <paramref name="keyId"/>: the key of that id alone
    /// when one is loaded (RFC 7515 §4.1.4, RFC 7516 §4.1.6: the <c>kid</c> says which key; IdentityModel otherwise tries
    /// every key returned, a failed A256KW unwrap costing an exception, during every rotation's overlap — decision 0105);
    /// every key for a token naming none. When no loaded key has that id — a key another replica created by a rotation
    /// on demand, not read here yet — the keys are read again first (rate-limited as <see cref="RefreshIfStaleAsync"/>;
    /// a blocking read, on this rare path only), and every key is returned if it is still unknown.
    /// </summary>
    public IEnumerable<SecurityKey> KeysFor(string? keyId, KeyUse use)
    {
        var view = View();
        if (string.IsNullOrEmpty(keyId))
        {
            return view.All(use);
        }

        if (view.ById(use, keyId) is { } named)
        {
            return named;
        }

        RefreshIfStaleAsync(CancellationToken.None).GetAwaiter().GetResult();
        view = View();
        return view.ById(use, keyId) ?? view.All(use);
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

    private RingKey Load(SigningKey row)
    {
        var (signing, encrypting, internalSigning) = material.Open(row);
        return new RingKey(row.Algorithm, KeySchedule.Generation(row), row.KeyId, row.CreatedAt, KeySchedule.Activation(row),
            row.RetiredAt, signing, encrypting, internalSigning);
    }

    private static InvalidOperationException NotLoaded() => new(
        "The signing keys are not loaded: the server must initialise its store before it serves requests.");

    private sealed record KeyState(IReadOnlyList<RingKey> Loaded, KeyView View);

    /// <summary>What the loaded keys mean at one instant, kept until the next activation or retirement among them.</summary>
    private sealed record KeyView(
        LoadedKeys Active,
        SecurityKey[] Verification,
        SecurityKey[] InternalVerification,
        SecurityKey[] Decryption,
        RingKey[] Published,
        (RingKey Key, string Stage)[] Stages,
        DateTimeOffset NextChange)
    {
        private readonly Dictionary<string, SecurityKey[]> _verificationById = ById(Verification);
        private readonly Dictionary<string, SecurityKey[]> _internalVerificationById = ById(InternalVerification);
        private readonly Dictionary<string, SecurityKey[]> _decryptionById = ById(Decryption);

        public IReadOnlyList<SecurityKey> All(KeyUse use) => use switch
        {
            KeyUse.Decryption => Decryption,
            KeyUse.InternalVerification => InternalVerification,
            _ => Verification,
        };

        /// <summary>The keys of <paramref name="keyId"/> for <paramref name="use"/> (one: kids are random per key), or null.</summary>
        public SecurityKey[]? ById(KeyUse use, string keyId) => (use switch
        {
            KeyUse.Decryption => _decryptionById,
            KeyUse.InternalVerification => _internalVerificationById,
            _ => _verificationById,
        }).GetValueOrDefault(keyId);

        private static Dictionary<string, SecurityKey[]> ById(SecurityKey[] keys) => keys
            .Where(k => !string.IsNullOrEmpty(k.KeyId))
            .GroupBy(k => k.KeyId, StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => g.ToArray(), StringComparer.Ordinal);

        public static KeyView Build(IReadOnlyList<RingKey> keys, DateTimeOffset now)
        {
            var live = keys.Where(k => KeySchedule.IsLive(k.RetiredAt, now)).ToList();
            var signing = live.Where(k => k.Signing is not null).ToArray();
            RingKey[] active = [KeySchedule.ActiveOf(live, "RS256", now), KeySchedule.ActiveOf(live, "ES256", now), KeySchedule.ActiveOf(live, "A256KW", now)];
            var verification = signing.Select(k => k.Signing!.Key).ToArray();
            return new KeyView(
                new LoadedKeys(active[0].Signing!, active[1].Signing!, active[2].Encrypting!, active[2].InternalSigning!),
                verification,
                [.. live.Where(k => k.InternalSigning is not null).Select(k => k.InternalSigning!.Key), .. verification],
                live.Where(k => k.Encrypting is not null).Select(k => k.Encrypting!.Key).ToArray(),
                signing,
                live.Select(k => (k, KeySchedule.Stage(k, active.Contains(k), now))).ToArray(),
                KeySchedule.NextChange(keys, now));
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
    EncryptingCredentials? Encrypting,
    SigningCredentials? InternalSigning = null);

/// <summary>What a token's keys are looked up for (<see cref="SigningKeyRing.KeysFor"/>).</summary>
public enum KeyUse
{
    /// <summary>The signature of an access or ID token: the asymmetric keys only.</summary>
    Verification,

    /// <summary>The signature of a token only the authority reads (code, refresh token): its HS256 keys too.</summary>
    InternalVerification,

    /// <summary>The decryption of a code or refresh token.</summary>
    Decryption,
}

/// <param name="Rs256">Signs ID tokens: RS256 is the OpenID Connect default (Core 1.0 §15.1) every relying party accepts.</param>
/// <param name="Es256">Signs access tokens by default: one P-256 signature costs about a twelfth of an RSA-2048 one.</param>
/// <param name="Encryption">Encrypts OpenIddict's internal tokens (codes, refresh tokens); access tokens stay signed JWTs.</param>
/// <param name="Internal">Signs those internal tokens: HS256, derived from the active encryption key (decision 0090).</param>
public sealed record LoadedKeys(SigningCredentials Rs256, SigningCredentials Es256, EncryptingCredentials Encryption, SigningCredentials Internal);
