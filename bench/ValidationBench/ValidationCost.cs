using System.Security.Claims;
using System.Security.Cryptography;
using System.Text;
using BenchmarkDotNet.Attributes;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace ValidationBench;

/// <summary>
/// Where a first-sight validation's time goes: the floor (the signature check alone, with the key object cached and the
/// signing input and signature already decoded), reading the token (IdentityModel's JsonWebToken), and the handler's
/// whole validation of the same token without the binding check — each per call, one thread.
/// </summary>
[MemoryDiagnoser]
public class ValidationCost
{
    private byte[] _input = null!;
    private byte[] _signature = null!;
    private RSA? _rsa;
    private ECDsa? _ecdsa;
    private string _token = null!;

    [Params("ES256", "RS256")]
    public string Algorithm { get; set; } = "ES256";

    [GlobalSetup]
    public void Setup()
    {
        _rsa = Algorithm == "RS256" ? RSA.Create(2048) : null;
        _ecdsa = Algorithm == "ES256" ? ECDsa.Create(ECCurve.NamedCurves.nistP256) : null;
        SecurityKey key = _rsa is not null ? new RsaSecurityKey(_rsa) : new ECDsaSecurityKey(_ecdsa!);
        _token = new JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
        {
            Issuer = "https://id.example.com/",
            Audience = "https://orders.eu.example",
            TokenType = "at+jwt",
            Expires = DateTime.UtcNow.AddHours(1),
            Subject = new ClaimsIdentity(),
            Claims = new Dictionary<string, object> { ["client_id"] = "orders-us", ["sub"] = "orders-us", ["scope"] = "orders.read" },
            SigningCredentials = new SigningCredentials(key, Algorithm),
        });
        var dot = _token.LastIndexOf('.');
        _input = Encoding.ASCII.GetBytes(_token[..dot]);
        _signature = Base64UrlEncoder.DecodeBytes(_token[(dot + 1)..]);
    }

    /// <summary>RS256: RSA 2048 PKCS#1 v1.5 SHA-256; ES256: ECDSA P-256 SHA-256 (JWS r||s). Nothing else.</summary>
    [Benchmark(Baseline = true)]
    public bool RawVerify() => _rsa is not null
        ? _rsa.VerifyData(_input, _signature, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1)
        : _ecdsa!.VerifyData(_input, _signature, HashAlgorithmName.SHA256);

    /// <summary>Reading the token: base64url and JSON of header and payload, as the handler does first.</summary>
    [Benchmark]
    public string Read() => new JsonWebToken(_token).Kid;
}
