using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Security.Cryptography;
using Microsoft.IdentityModel.Tokens;

namespace Identity.Server.Keys;

/// <summary>
/// A256KW — AES key wrap, RFC 3394 §2.2 with its default initial value (RFC 7518 §4.4) — of the content keys of
/// Identity's encrypted tokens (codes, refresh tokens), made once per token-encryption key instead of once per token.
/// <para>
/// IdentityModel's own provider is built anew for every token it encrypts or decrypts (an AES object, its key set, a
/// cipher context, never disposed: left to the finalizer) and runs each of the wrap's 48 AES block operations as a
/// final block (cipher update, final and reset in OpenSSL, and a new array each). Here each key keeps its AES
/// encryptors and decryptors (ECB, no padding: the single-block AES of RFC 3394), pooled because a cipher context serves
/// one thread at a time, and each block operation is one cipher update. Same algorithm, key and output
/// (decision 0104): tokens encrypted by either provider are read by the other.
/// </para>
/// </summary>
public sealed class AesKeyWrap : KeyWrapProvider
{
    private const int Half = 8; // RFC 3394 works on 64-bit halves of 128-bit AES blocks

    private readonly Aes _aes;
    private readonly ConcurrentBag<Lane> _encryptors = [];
    private readonly ConcurrentBag<Lane> _decryptors = [];

    public AesKeyWrap(SymmetricSecurityKey key)
    {
        ArgumentNullException.ThrowIfNull(key);
        if (key.Key.Length != 32)
        {
            throw new ArgumentException("A256KW needs a 256-bit key.", nameof(key));
        }

        Key = key;
        _aes = Aes.Create();
        _aes.Mode = CipherMode.ECB;
        _aes.Padding = PaddingMode.None;
        _aes.Key = key.Key;
    }

    public override string Algorithm => SecurityAlgorithms.Aes256KW;

    public override string? Context { get; set; }

    public override SecurityKey Key { get; }

    /// <summary>RFC 3394 §2.2.3.1: the default initial value, checked again on unwrap as the integrity check.</summary>
    private static ReadOnlySpan<byte> DefaultIv => [0xA6, 0xA6, 0xA6, 0xA6, 0xA6, 0xA6, 0xA6, 0xA6];

    /// <summary>RFC 3394 §2.2.1, index-based: A = IV; for j = 0..5, i = 1..n: B = AES(K, A | R[i]), A = MSB64(B) ^ t, R[i] = LSB64(B).</summary>
    public override byte[] WrapKey(byte[] keyBytes)
    {
        ArgumentNullException.ThrowIfNull(keyBytes);
        if (keyBytes.Length < 2 * Half || keyBytes.Length % Half != 0)
        {
            throw new ArgumentException("The key to wrap must be at least 128 bits and a multiple of 64 bits.", nameof(keyBytes));
        }

        var n = keyBytes.Length / Half;
        var wrapped = new byte[keyBytes.Length + Half]; // A | R[1] … R[n], worked on in place
        DefaultIv.CopyTo(wrapped);
        keyBytes.CopyTo(wrapped, Half);

        var lane = Rent(_encryptors, encrypt: true);
        try
        {
            for (var j = 0; j < 6; j++)
            {
                for (var i = 1; i <= n; i++)
                {
                    var r = wrapped.AsSpan(i * Half, Half);
                    wrapped.AsSpan(0, Half).CopyTo(lane.In);
                    r.CopyTo(lane.In.AsSpan(Half));
                    lane.Transform();
                    var t = (ulong)((n * j) + i);
                    BinaryPrimitives.WriteUInt64BigEndian(wrapped, BinaryPrimitives.ReadUInt64BigEndian(lane.Out) ^ t);
                    lane.Out.AsSpan(Half).CopyTo(r);
                }
            }
        }
        finally
        {
            Return(_encryptors, lane);
        }

        return wrapped;
    }

    /// <summary>
    /// RFC 3394 §2.2.2, index-based: for j = 5..0, i = n..1: B = AES⁻¹(K, (A ^ t) | R[i]), A = MSB64(B), R[i] = LSB64(B);
    /// the key is returned only when A comes out as the initial value (§2.2.3), compared in constant time.
    /// </summary>
    public override byte[] UnwrapKey(byte[] keyBytes)
    {
        ArgumentNullException.ThrowIfNull(keyBytes);
        if (keyBytes.Length < 3 * Half || keyBytes.Length % Half != 0)
        {
            throw new SecurityTokenKeyWrapException("The wrapped key must be at least 192 bits and a multiple of 64 bits.");
        }

        var n = (keyBytes.Length / Half) - 1;
        var key = keyBytes.AsSpan(Half).ToArray(); // R[1] … R[n], worked on in place
        Span<byte> a = stackalloc byte[Half];
        keyBytes.AsSpan(0, Half).CopyTo(a);

        var lane = Rent(_decryptors, encrypt: false);
        try
        {
            for (var j = 5; j >= 0; j--)
            {
                for (var i = n; i >= 1; i--)
                {
                    var r = key.AsSpan((i - 1) * Half, Half);
                    var t = (ulong)((n * j) + i);
                    BinaryPrimitives.WriteUInt64BigEndian(lane.In, BinaryPrimitives.ReadUInt64BigEndian(a) ^ t);
                    r.CopyTo(lane.In.AsSpan(Half));
                    lane.Transform();
                    lane.Out.AsSpan(0, Half).CopyTo(a);
                    lane.Out.AsSpan(Half).CopyTo(r);
                }
            }
        }
        finally
        {
            Return(_decryptors, lane);
        }

        if (!CryptographicOperations.FixedTimeEquals(a, DefaultIv))
        {
            CryptographicOperations.ZeroMemory(key);
            throw new SecurityTokenKeyWrapException("The wrapped key does not unwrap with this key (RFC 3394 §2.2.3 integrity check).");
        }

        return key;
    }

    /// <summary>
    /// Nothing to release per use: the provider lives as long as its key (IdentityModel disposes it only through
    /// <see cref="AesKeyWrapFactory.ReleaseKeyWrapProvider"/>, which keeps it); its cipher contexts are safe handles,
    /// freed when the ring drops the key.
    /// </summary>
    protected override void Dispose(bool disposing)
    {
    }

    private Lane Rent(ConcurrentBag<Lane> pool, bool encrypt) =>
        pool.TryTake(out var lane) ? lane : new Lane(encrypt ? _aes.CreateEncryptor() : _aes.CreateDecryptor());

    private static void Return(ConcurrentBag<Lane> pool, Lane lane)
    {
        CryptographicOperations.ZeroMemory(lane.In);
        CryptographicOperations.ZeroMemory(lane.Out);
        pool.Add(lane);
    }

    /// <summary>One thread's AES context (ECB, no padding: block in, block out, no state between blocks) and its buffers.</summary>
    private sealed class Lane(ICryptoTransform transform)
    {
        public byte[] In { get; } = new byte[16];

        public byte[] Out { get; } = new byte[16];

        public void Transform()
        {
            if (transform.TransformBlock(In, 0, 16, Out, 0) != 16)
            {
                throw new CryptographicException("AES returned a partial block.");
            }
        }
    }
}

/// <summary>
/// The crypto factory of one token-encryption key: its A256KW wrap and unwrap by the key's own
/// <see cref="AesKeyWrap"/>, kept across tokens; everything else as IdentityModel's default.
/// </summary>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1001", Justification = "The key wrap lives as long as its key: see AesKeyWrap.Dispose.")]
public sealed class AesKeyWrapFactory : CryptoProviderFactory
{
    private readonly AesKeyWrap _keyWrap;

    private AesKeyWrapFactory(SymmetricSecurityKey key) => _keyWrap = new AesKeyWrap(key);

    /// <summary>Gives <paramref name="key"/> a factory of its own; returns the key.</summary>
    public static SymmetricSecurityKey Attach(SymmetricSecurityKey key)
    {
        key.CryptoProviderFactory = new AesKeyWrapFactory(key);
        return key;
    }

    public override KeyWrapProvider CreateKeyWrapProvider(SecurityKey key, string algorithm) =>
        IsOwn(key, algorithm) ? _keyWrap : base.CreateKeyWrapProvider(key, algorithm);

    public override KeyWrapProvider CreateKeyWrapProviderForUnwrap(SecurityKey key, string algorithm) =>
        IsOwn(key, algorithm) ? _keyWrap : base.CreateKeyWrapProviderForUnwrap(key, algorithm);

    public override void ReleaseKeyWrapProvider(KeyWrapProvider provider)
    {
        if (!ReferenceEquals(provider, _keyWrap))
        {
            base.ReleaseKeyWrapProvider(provider);
        }
    }

    private bool IsOwn(SecurityKey key, string algorithm) =>
        ReferenceEquals(key, _keyWrap.Key) && string.Equals(algorithm, SecurityAlgorithms.Aes256KW, StringComparison.Ordinal);
}
