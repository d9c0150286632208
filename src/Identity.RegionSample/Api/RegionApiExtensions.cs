using System.ComponentModel.DataAnnotations;
using System.Security.Cryptography;
using System.Text.Json;
using Identity.Region.Tokens;
using Identity.Region.Validation;
using Identity.RegionSample.SignIn;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Options;

namespace Identity.RegionSample.Api;

/// <summary>
/// Service-to-service calls between regions (RFC 8705): <c>GET /api/region-info</c>, an API that accepts only
/// Identity's certificate-bound tokens presented with their certificate (when <c>IdentityTokenValidation</c> is
/// configured), and <c>GET /call/{region}</c>, which calls another region's API with this service's bound token over
/// mutual TLS (when <c>RegionCalls:Peers</c> is configured, with the <c>IdentityTokenClient</c> section).
/// </summary>
public static class RegionApiExtensions
{
    /// <summary>The named Kestrel endpoint (<c>Kestrel:Endpoints:Api</c>) that asks callers for a certificate.</summary>
    public const string ApiEndpoint = "Api";

    private const string PeersClient = "region-peers";

    public static IHostApplicationBuilder AddRegionApi(this IHostApplicationBuilder builder)
    {
        if (builder.Configuration.GetSection(IdentityTokenValidationOptions.SectionName).Exists())
        {
            // Every caller of this API is a service over mutual TLS: an unbound token is refused.
            builder.Services.AddAuthentication().AddIdentityBearer(validation => validation.RequireCertificateBinding = true);
            var kestrel = builder.Configuration.GetSection("Kestrel");
            // Browsers use the other endpoints and are never asked for a certificate; on this one every caller is.
            builder.Services.Configure<KestrelServerOptions>(options =>
                options.Configure(kestrel).Endpoint(ApiEndpoint, endpoint => endpoint.HttpsOptions.AskForClientCertificate()));
        }

        if (builder.Configuration.GetSection(RegionCallsOptions.SectionName).Exists())
        {
            builder.Services.AddOptions<RegionCallsOptions>()
                .BindConfiguration(RegionCallsOptions.SectionName)
                .ValidateDataAnnotations()
                .Validate(o => o.Peers.Values.All(p => p.IsAbsoluteUri && p.Scheme == Uri.UriSchemeHttps),
                    "RegionCalls:Peers: every peer is an absolute https URL (its API asks for the client certificate).")
                .ValidateOnStart();
            builder.Services.AddIdentityTokenClient();
            // The token and the connection carry the same certificate: the one the token is bound to.
            builder.Services.AddHttpClient(PeersClient).AddIdentityAccessToken().UseIdentityClientCertificate();
        }

        return builder;
    }

    public static WebApplication MapRegionApi(this WebApplication app)
    {
        if (app.Configuration.GetSection(IdentityTokenValidationOptions.SectionName).Exists())
        {
            app.MapGet("/api/region-info", RegionInfo)
                .RequireAuthorization(new AuthorizeAttribute { AuthenticationSchemes = IdentityBearerDefaults.AuthenticationScheme });
        }

        if (app.Configuration.GetSection(RegionCallsOptions.SectionName).Exists())
        {
            app.MapGet("/call/{region}", CallAsync);
        }

        return app;
    }

    /// <summary>Which region answered, to which client, seen over which certificate.</summary>
    private static RegionInfoResponse RegionInfo(HttpContext context, IOptions<RegionSignInOptions> region) => new(
        region.Value.Region,
        context.User.FindFirst("client_id")?.Value,
        context.Connection.ClientCertificate is { } certificate ? Base64Url(SHA256.HashData(certificate.RawData)) : null);

    private static async Task<IResult> CallAsync(
        string region, IOptions<RegionCallsOptions> calls, IOptions<RegionSignInOptions> self, IHttpClientFactory clients,
        ILoggerFactory logs, CancellationToken cancellationToken)
    {
        if (!calls.Value.Peers.TryGetValue(region, out var peer))
        {
            return TypedResults.Problem(statusCode: StatusCodes.Status404NotFound, title: "Unknown region",
                detail: $"No peer region '{region}' is configured (RegionCalls:Peers).");
        }

        try
        {
            using var response = await clients.CreateClient(PeersClient).GetAsync(new Uri(peer, "api/region-info"), cancellationToken);
            if (!response.IsSuccessStatusCode)
            {
                return TypedResults.Problem(statusCode: StatusCodes.Status502BadGateway, title: "The peer region refused the call",
                    detail: $"Region '{region}' answered {(int)response.StatusCode}.");
            }

            var answer = await response.Content.ReadFromJsonAsync<RegionInfoResponse>(cancellationToken);
            return TypedResults.Ok(new CallResponse(self.Value.Region, region, answer));
        }
        catch (HttpRequestException e)
        {
            // The token client's messages name the client and the endpoint, never a secret or a token.
            logs.CreateLogger(typeof(RegionApiExtensions)).LogWarning("Call to region {Region} failed: {Error}", region, e.Message);
            return TypedResults.Problem(statusCode: StatusCodes.Status502BadGateway, title: "The peer region could not be called", detail: e.Message);
        }
        catch (JsonException)
        {
            return TypedResults.Problem(statusCode: StatusCodes.Status502BadGateway, title: "The peer region's answer is not region info");
        }
    }

    private static string Base64Url(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    public sealed record RegionInfoResponse(string Region, string? Caller, string? Certificate);

    public sealed record CallResponse(string From, string To, RegionInfoResponse? Answer);
}

/// <summary>The other regions this one calls (section <c>RegionCalls</c>): region code → the base URL of its API.</summary>
public sealed class RegionCallsOptions
{
    public const string SectionName = "RegionCalls";

    [MinLength(1, ErrorMessage = "RegionCalls:Peers must name at least one region (e.g. RegionCalls:Peers:us = https://us.internal:5443/).")]
    public Dictionary<string, Uri> Peers { get; set; } = [];
}
