using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace Identity.Region.Tokens;

/// <summary>
/// How the token client proves who it is at the token endpoint: with a secret, a signed assertion, or its TLS
/// connection (<see cref="MutualTlsAuthentication"/>, RFC 8705 §2).
/// </summary>
public abstract class TokenClientAuthentication
{
    /// <summary>Adds the client's credentials to the token request (its header or its form).</summary>
    public abstract void Apply(HttpRequestMessage request, IDictionary<string, string> form, IdentityTokenClientOptions options, DateTimeOffset now);

    /// <summary>The token endpoint to call; the mTLS one answers the alias from discovery.</summary>
    public virtual ValueTask<Uri> TokenEndpointAsync(IdentityTokenClientOptions options, HttpClient http, CancellationToken cancellationToken) =>
        ValueTask.FromResult(options.TokenEndpoint);

    /// <summary>
    /// What the tokens obtained now are bound to (the certificate's <c>x5t#S256</c>), or null. A cached token
    /// obtained under another binding is not used again.
    /// </summary>
    public virtual string? Binding => null;

    /// <summary>
    /// The token client's own connections: by default the standard handler, trusting
    /// <see cref="IdentityTokenClientOptions.TrustedServerCaFile"/> as well when it is set, downloading no
    /// certificate (<see cref="ClientCertificate.ServerChainPolicy"/>).
    /// </summary>
    public virtual HttpMessageHandler CreatePrimaryHandler(IdentityTokenClientOptions options)
    {
        var handler = new SocketsHttpHandler { SslOptions = { CertificateChainPolicy = ClientCertificate.ServerChainPolicy() } };
        if (options.TrustedServerCaFile is { Length: > 0 } file && ClientCertificate.LoadBundle(file) is { } trusted)
        {
            handler.SslOptions.RemoteCertificateValidationCallback = ClientCertificate.ServerValidation(trusted);
        }

        return handler;
    }
}

/// <summary><c>client_secret_basic</c>: id and secret form-encoded, then Base64 (RFC 6749 §2.3.1).</summary>
public sealed class ClientSecretBasicAuthentication : TokenClientAuthentication
{
    public static ClientSecretBasicAuthentication Instance { get; } = new();

    public override void Apply(HttpRequestMessage request, IDictionary<string, string> form, IdentityTokenClientOptions options, DateTimeOffset now)
    {
        var credentials = $"{Uri.EscapeDataString(options.ClientId)}:{Uri.EscapeDataString(options.ClientSecret ?? "")}";
        request.Headers.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes(credentials)));
    }
}

/// <summary>
/// <c>private_key_jwt</c> (RFC 7523 §2.2, OpenID Connect Core §9): a short-lived assertion signed with the client's
/// key, its audience the issuer (decision 0040) and typed <c>client-authentication+jwt</c>.
/// </summary>
public sealed class PrivateKeyJwtAuthentication : TokenClientAuthentication, IDisposable
{
    private static readonly TimeSpan Lifetime = TimeSpan.FromMinutes(1);
    private readonly AsymmetricAlgorithm _key;
    private readonly string? _keyId;

    private PrivateKeyJwtAuthentication(AsymmetricAlgorithm key, string? keyId) => (_key, _keyId) = (key, keyId);

    /// <summary>Reads an RSA or EC private key from a PEM file.</summary>
    public static PrivateKeyJwtAuthentication Load(string path, string? keyId)
    {
        var pem = File.ReadAllText(path);
        AsymmetricAlgorithm key = pem.Contains("EC PRIVATE KEY", StringComparison.Ordinal) || IsEcPkcs8(pem) ? ECDsa.Create() : RSA.Create();
        try
        {
            key.ImportFromPem(pem);
            return new PrivateKeyJwtAuthentication(key, keyId);
        }
        catch
        {
            key.Dispose();
            throw;
        }
    }

    public override void Apply(HttpRequestMessage request, IDictionary<string, string> form, IdentityTokenClientOptions options, DateTimeOffset now)
    {
        form["client_id"] = options.ClientId;
        form["client_assertion_type"] = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
        form["client_assertion"] = Sign(options, now);
    }

    private string Sign(IdentityTokenClientOptions options, DateTimeOffset now)
    {
        var algorithm = _key switch
        {
            RSA => "RS256",
            ECDsa { KeySize: 256 } => "ES256",
            ECDsa { KeySize: 384 } => "ES384",
            ECDsa { KeySize: 521 } => "ES512",
            _ => throw new CryptographicException("Unsupported key for private_key_jwt."),
        };
        var header = new Dictionary<string, string> { ["alg"] = algorithm, ["typ"] = "client-authentication+jwt" };
        if (_keyId is { Length: > 0 })
        {
            header["kid"] = _keyId;
        }

        var payload = new Dictionary<string, object>
        {
            ["iss"] = options.ClientId,
            ["sub"] = options.ClientId,
            ["aud"] = options.Authority!.AbsoluteUri,
            ["jti"] = Guid.NewGuid().ToString("n"),
            ["iat"] = now.ToUnixTimeSeconds(),
            ["nbf"] = now.ToUnixTimeSeconds(),
            ["exp"] = now.Add(Lifetime).ToUnixTimeSeconds(),
        };
        var signingInput = Base64Url(JsonSerializer.SerializeToUtf8Bytes(header)) + "." + Base64Url(JsonSerializer.SerializeToUtf8Bytes(payload));
        var data = Encoding.ASCII.GetBytes(signingInput);
        var signature = _key switch
        {
            RSA rsa => rsa.SignData(data, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1),
            // JWS wants r||s (RFC 7518 §3.4), .NET's default IEEE P1363 format.
            ECDsa ec => ec.SignData(data, ec.KeySize switch { 256 => HashAlgorithmName.SHA256, 384 => HashAlgorithmName.SHA384, _ => HashAlgorithmName.SHA512 }),
            _ => throw new CryptographicException("Unsupported key for private_key_jwt."),
        };
        return signingInput + "." + Base64Url(signature);
    }

    private static string Base64Url(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    private static bool IsEcPkcs8(string pem)
    {
        using var ec = ECDsa.Create();
        try
        {
            ec.ImportFromPem(pem);
            return true;
        }
        catch (ArgumentException)
        {
            return false;
        }
        catch (CryptographicException)
        {
            return false;
        }
    }

    public void Dispose() => _key.Dispose();
}
