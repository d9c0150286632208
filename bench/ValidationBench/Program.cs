using System.Globalization;
using System.Security.Claims;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Running;
using BenchmarkDotNet.Toolchains.InProcess.Emit;
using Identity.Region.Validation;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using ValidationBench;

// Regional validation of certificate-bound access tokens, one thread: what the API does per call after TLS —
// IdentityTokenHandler (issuer, audience, typ, lifetime, signature with Identity's keys) and the binding check
// (cnf.x5t#S256 against the caller's certificate). The caller's chain validation is left out: the Certificate
// handler caches it per certificate, so a steady caller pays it once.
// `--cpu`: process CPU time per call instead (no BenchmarkDotNet), a figure that survives a loaded machine.
// `--floor`: also ValidationCost, the raw signature verification and the token read the validation is built on.
if (args.Contains("--cpu"))
{
    CpuPerCall.Run();
    return;
}

var config = ManualConfig.Create(DefaultConfig.Instance)
    .AddJob(Job.Default.WithToolchain(InProcessEmitToolchain.Instance).WithWarmupCount(3).WithIterationCount(args.Contains("--quick") ? 5 : 15))
    .WithOptions(ConfigOptions.DisableOptimizationsValidator);
if (args.Contains("--floor"))
{
    BenchmarkRunner.Run<ValidationCost>(config);
}

var summary = BenchmarkRunner.Run<BoundTokenValidation>(config);

Console.WriteLine();
Console.WriteLine($"Bound-token validations per second per core ({Environment.ProcessorCount} cores, {DateTimeOffset.UtcNow:yyyy-MM-dd HH:mm} UTC; target 50,000):");
foreach (var report in summary.Reports.Where(r => r.ResultStatistics is not null))
{
    var perSecond = 1e9 / report.ResultStatistics!.Mean;
    var name = $"{report.BenchmarkCase.Descriptor.WorkloadMethod.Name} {report.BenchmarkCase.Parameters.PrintInfo}";
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"  {name,-42} {perSecond,10:N0}/s  ({report.ResultStatistics.Mean / 1000:N1} µs)  {(perSecond >= 50_000 ? "meets" : "below")} target"));
}

namespace ValidationBench
{
    [MemoryDiagnoser]
    public class BoundTokenValidation
    {
        private const string Issuer = "https://id.example.com/";
        private const string Audience = "https://orders.eu.example";
        private const int DistinctTokens = 4096;

        private IdentityTokenHandler _uncached = null!;
        private IdentityTokenHandler _cached = null!;
        private TokenValidationParameters _parameters = null!;
        private X509Certificate2 _certificate = null!;
        private string[] _tokens = null!;
        private int _next;

        [Params("ES256", "RS256")]
        public string Algorithm { get; set; } = "ES256";

        [GlobalSetup]
        public void Setup()
        {
            using var certificateKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
            _certificate = new CertificateRequest("CN=orders.us", certificateKey, HashAlgorithmName.SHA256)
                .CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
            SecurityKey key = Algorithm == "ES256"
                ? new ECDsaSecurityKey(ECDsa.Create(ECCurve.NamedCurves.nistP256)) { KeyId = "k1" }
                : new RsaSecurityKey(RSA.Create(2048)) { KeyId = "k1" };

            var options = new IdentityTokenValidationOptions { Authority = new Uri(Issuer), Audiences = [Audience] };
            var keys = new IdentitySigningKeys(Options.Create(options), new NoHttp(), TimeProvider.System, NullLogger<IdentitySigningKeys>.Instance);
            keys.Use(Jwks(key), new Uri(Issuer + ".well-known/jwks"));
            _parameters = IdentityTokenHandler.Parameters(options, keys, TimeProvider.System);
            _uncached = new IdentityTokenHandler(keys, TimeProvider.System, new IdentityTokenValidationOptions { Authority = options.Authority, ValidatedTokenCacheSize = 0 });
            _cached = new IdentityTokenHandler(keys, TimeProvider.System, options);

            var thumbprint = Base64UrlEncoder.Encode(SHA256.HashData(_certificate.RawData));
            var writer = new JsonWebTokenHandler();
            _tokens = [.. Enumerable.Range(0, DistinctTokens).Select(i => writer.CreateToken(new SecurityTokenDescriptor
            {
                Issuer = Issuer,
                Audience = Audience,
                TokenType = "at+jwt",
                Expires = DateTime.UtcNow.AddHours(1),
                Subject = new ClaimsIdentity(),
                Claims = new Dictionary<string, object>
                {
                    ["client_id"] = "orders-us",
                    ["sub"] = "orders-us",
                    ["scope"] = "orders.read",
                    ["jti"] = Guid.NewGuid().ToString("N"),
                    ["cnf"] = new Dictionary<string, object> { ["x5t#S256"] = thumbprint },
                },
                SigningCredentials = new SigningCredentials(key, Algorithm),
            }))];
        }

        /// <summary>A token the service has not seen: its signature verified.</summary>
        [Benchmark]
        public bool FirstSight() => Validate(_uncached, _tokens[_next++ % DistinctTokens]);

        /// <summary>The same token again (a caller reusing its token until near expiry): lifetime, key and binding checked, not the signature.</summary>
        [Benchmark]
        public bool Repeated() => Validate(_cached, _tokens[0]);

        private bool Validate(IdentityTokenHandler handler, string token)
        {
            var result = handler.ValidateTokenAsync(token, _parameters).GetAwaiter().GetResult();
            Span<byte> thumbprint = stackalloc byte[SHA256.HashSizeInBytes];
            return result.IsValid && CertificateBinding.Check(result.ClaimsIdentity, _certificate, requireBinding: true, thumbprint) == BindingVerdict.Bound
                ? true
                : throw new InvalidOperationException("The bench token was refused: " + result.Exception?.Message);
        }

        private static string Jwks(SecurityKey key) => JsonSerializer.Serialize(new
        {
            keys = new[]
            {
                key is ECDsaSecurityKey ec
                    ? (object)new { kty = "EC", use = "sig", kid = key.KeyId, crv = "P-256", x = Base64UrlEncoder.Encode(ec.ECDsa.ExportParameters(false).Q.X), y = Base64UrlEncoder.Encode(ec.ECDsa.ExportParameters(false).Q.Y) }
                    : new { kty = "RSA", use = "sig", kid = key.KeyId, n = Base64UrlEncoder.Encode(((RsaSecurityKey)key).Rsa.ExportParameters(false).Modulus), e = Base64UrlEncoder.Encode(((RsaSecurityKey)key).Rsa.ExportParameters(false).Exponent) },
            },
        });

        private sealed class NoHttp : IHttpClientFactory
        {
            public HttpClient CreateClient(string name) => throw new NotSupportedException("The benchmark fetches no keys.");
        }
    }
}
