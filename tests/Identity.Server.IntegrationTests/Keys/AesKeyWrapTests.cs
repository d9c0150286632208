using System.Security.Claims;
using System.Security.Cryptography;
using Identity.Server.Keys;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Identity.Server.IntegrationTests.Keys;

/// <summary>
/// Decision 0104: the A256KW key wrap kept per token-encryption key gives exactly RFC 3394's output, reads what
/// IdentityModel's own provider wrote (codes and refresh tokens issued before the change) and the other way round,
/// refuses a tampered or foreign wrapped key, and is shared safely by concurrent requests.
/// </summary>
public sealed class AesKeyWrapTests
{
    private static SymmetricSecurityKey NewKey() => new(RandomNumberGenerator.GetBytes(32)) { KeyId = "k1" };

    /// <summary>RFC 3394 §4.6: 256 bits of key data wrapped with a 256-bit KEK.</summary>
    [Fact]
    public void WrapKey_Rfc3394Section4_6_GivesTheRfcsCiphertextAndUnwrapsBack()
    {
        var kek = new SymmetricSecurityKey(Convert.FromHexString("000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F"));
        var keyData = Convert.FromHexString("00112233445566778899AABBCCDDEEFF000102030405060708090A0B0C0D0E0F");
        var expected = Convert.FromHexString("28C9F404C4B810F4CBCCB35CFB87F8263F5786E2D80ED326CBC7F0E71A99F43BFB988B9B7A02DD21");
        var wrap = new AesKeyWrap(kek);

        Assert.Equal(expected, wrap.WrapKey(keyData));
        Assert.Equal(keyData, wrap.UnwrapKey(expected));
    }

    [Fact]
    public void WrapKey_ContentKeyOfA256CbcHs512_ReadByIdentityModelsProviderAndTheOtherWayRound()
    {
        var key = NewKey();
        var cek = RandomNumberGenerator.GetBytes(64);
        using var theirs = new SymmetricKeyWrapProvider(key, SecurityAlgorithms.Aes256KW);
        var ours = new AesKeyWrap(key);

        Assert.Equal(theirs.WrapKey(cek), ours.WrapKey(cek));
        Assert.Equal(cek, theirs.UnwrapKey(ours.WrapKey(cek)));
        Assert.Equal(cek, ours.UnwrapKey(theirs.WrapKey(cek)));
    }

    [Fact]
    public void UnwrapKey_TamperedOrForeignOrMalformed_Refused()
    {
        var ours = new AesKeyWrap(NewKey());
        var wrapped = ours.WrapKey(RandomNumberGenerator.GetBytes(64));

        for (var i = 0; i < wrapped.Length; i += 9)
        {
            var tampered = (byte[])wrapped.Clone();
            tampered[i] ^= 0x01;
            Assert.Throws<SecurityTokenKeyWrapException>(() => ours.UnwrapKey(tampered));
        }

        Assert.Throws<SecurityTokenKeyWrapException>(() => new AesKeyWrap(NewKey()).UnwrapKey(wrapped));
        Assert.Throws<SecurityTokenKeyWrapException>(() => ours.UnwrapKey(wrapped[..^1]));
        Assert.Throws<SecurityTokenKeyWrapException>(() => ours.UnwrapKey(new byte[16]));
        Assert.Throws<ArgumentException>(() => ours.WrapKey(new byte[12]));
        Assert.Throws<ArgumentException>(() => new AesKeyWrap(new SymmetricSecurityKey(new byte[16])));
    }

    [Fact]
    public async Task WrapAndUnwrap_FortyConcurrentCallers_EachGetsItsOwnKeyBack()
    {
        var ours = new AesKeyWrap(NewKey());

        await Task.WhenAll(Enumerable.Range(0, 40).Select(_ => Task.Run(() =>
        {
            for (var i = 0; i < 200; i++)
            {
                var cek = RandomNumberGenerator.GetBytes(64);
                Assert.Equal(cek, ours.UnwrapKey(ours.WrapKey(cek)));
            }
        })));
    }

    /// <summary>
    /// How OpenIddict encrypts and reads a code (JWE A256KW + A256CBC-HS512): a token encrypted with a key carrying its
    /// own factory is read by a key without one, and the other way round, with the same provider for every token.
    /// </summary>
    [Fact]
    public void Jwe_KeyWithItsOwnFactory_InteroperatesWithThePlainKeyAndKeepsOneProvider()
    {
        var material = RandomNumberGenerator.GetBytes(32);
        var attached = AesKeyWrapFactory.Attach(new SymmetricSecurityKey(material) { KeyId = "enc" });
        var plain = new SymmetricSecurityKey(material) { KeyId = "enc" };
        var handler = new JsonWebTokenHandler();

        string Encrypt(SymmetricSecurityKey key) => handler.CreateToken(new SecurityTokenDescriptor
        {
            Subject = new ClaimsIdentity([new Claim("sub", "alice")]),
            SigningCredentials = new SigningCredentials(new SymmetricSecurityKey(RandomNumberGenerator.GetBytes(32)), SecurityAlgorithms.HmacSha256),
            EncryptingCredentials = new EncryptingCredentials(key, SecurityAlgorithms.Aes256KW, SecurityAlgorithms.Aes256CbcHmacSha512),
        });

        string Decrypt(string jwe, SymmetricSecurityKey key) =>
            handler.DecryptToken(new JsonWebToken(jwe), new TokenValidationParameters { TokenDecryptionKeys = [key] });

        Assert.Equal("alice", new JsonWebToken(Decrypt(Encrypt(attached), plain)).Subject);
        Assert.Equal("alice", new JsonWebToken(Decrypt(Encrypt(plain), attached)).Subject);
        Assert.Same(
            attached.CryptoProviderFactory.CreateKeyWrapProvider(attached, SecurityAlgorithms.Aes256KW),
            attached.CryptoProviderFactory.CreateKeyWrapProviderForUnwrap(attached, SecurityAlgorithms.Aes256KW));
    }
}
