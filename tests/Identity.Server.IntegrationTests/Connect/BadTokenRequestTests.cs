using System.Net;
using System.Net.Http.Headers;
using System.Text;
using Identity.Server.IntegrationTests.Infrastructure;

namespace Identity.Server.IntegrationTests.Connect;

/// <summary>
/// Malformed and hostile token requests get an RFC 6749 §5.2 JSON error with the right status, never a 500.
/// </summary>
public sealed class BadTokenRequestTests(ServerFixture<SqliteTestDatabase> fixture) : IClassFixture<ServerFixture<SqliteTestDatabase>>
{
    private const string JwtBearer = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

    public static TheoryData<string, HttpStatusCode, string> Cases => new()
    {
        { "missing-grant-type", HttpStatusCode.BadRequest, "invalid_request" },
        { "repeated-grant-type", HttpStatusCode.BadRequest, "invalid_request" },
        { "repeated-client-id", HttpStatusCode.BadRequest, "invalid_request" },
        { "json-content-type", HttpStatusCode.BadRequest, "invalid_request" },
        { "no-content-type", HttpStatusCode.BadRequest, "invalid_request" },
        { "one-megabyte-body", HttpStatusCode.BadRequest, "invalid_request" },
        { "chunked-one-megabyte-body", HttpStatusCode.BadRequest, "invalid_request" },
        { "invalid-utf8", HttpStatusCode.Unauthorized, "invalid_client" },
        { "unknown-grant-type", HttpStatusCode.BadRequest, "unsupported_grant_type" },
        { "get-method", HttpStatusCode.BadRequest, "invalid_request" },
        { "unknown-client", HttpStatusCode.Unauthorized, "invalid_client" },
        { "garbage-client-assertion", HttpStatusCode.Unauthorized, "invalid_client" },
        { "expired-client-assertion", HttpStatusCode.Unauthorized, "invalid_client" },
        { "client-assertion-wrong-audience", HttpStatusCode.Unauthorized, "invalid_client" },
        { "client-assertion-signed-by-another-key", HttpStatusCode.Unauthorized, "invalid_client" },
        { "secret-and-assertion", HttpStatusCode.BadRequest, "invalid_request" },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task TokenEndpoint_BadInput_Rfc6749JsonError(string @case, HttpStatusCode status, string error)
    {
        using var request = Build(@case);

        var response = await fixture.Client.SendAsync(request);

        var body = await ResponseAssert.StatusAsync(response, status);
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal(error, body.GetProperty("error").GetString());
        Assert.Contains("no-store", response.Headers.CacheControl?.ToString() ?? "", StringComparison.Ordinal);
        if (status == HttpStatusCode.Unauthorized)
        {
            // RFC 6749 §5.2: a 401 carries WWW-Authenticate.
            Assert.NotEmpty(response.Headers.WwwAuthenticate);
        }
    }

    public static TheoryData<string, string> ConnectEndpoints
    {
        get
        {
            var data = new TheoryData<string, string>();
            foreach (var path in new[] { "/connect/token", "/connect/introspect", "/connect/revoke", "/connect/authorize", "/connect/userinfo", "/connect/endsession" })
            {
                data.Add(path, "application/x-www-form-urlencoded, application/json");
                data.Add(path, "application/x-www-form-urlencoded-junk");
            }

            return data;
        }
    }

    // A Content-Type header listing several media types, or one that only begins like the form's, names none the form
    // reader accepts: the request is malformed (RFC 9110 §8.3 allows one media type), an RFC 6749 §5.2
    // invalid_request, on every endpoint that reads a form.
    [Theory]
    [MemberData(nameof(ConnectEndpoints))]
    public async Task ConnectEndpoint_ListValuedOrFormLikeContentType_InvalidRequestJson(string path, string contentType)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, path)
        {
            Content = new ByteArrayContent(Encoding.ASCII.GetBytes("grant_type=client_credentials&scope=api.read&token=x&client_id=web-eu")),
        };
        Assert.True(request.Content.Headers.TryAddWithoutValidation("Content-Type", contentType));

        var response = await fixture.Client.SendAsync(request);

        var body = await ResponseAssert.StatusAsync(response, HttpStatusCode.BadRequest);
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal("invalid_request", body.GetProperty("error").GetString());
    }

    private HttpRequestMessage Build(string @case)
    {
        HttpRequestMessage Form(string body, string contentType = "application/x-www-form-urlencoded") => new(HttpMethod.Post, "/connect/token")
        {
            Content = new StringContent(body, Encoding.UTF8, contentType),
        };

        HttpRequestMessage Basic(HttpRequestMessage message)
        {
            message.Headers.Authorization = new AuthenticationHeaderValue("Basic",
                Convert.ToBase64String(Encoding.UTF8.GetBytes($"svc-basic:{fixture.BasicSecret}")));
            return message;
        }

        string Assertion(string body, string assertion) =>
            $"{body}&client_assertion_type={Uri.EscapeDataString(JwtBearer)}&client_assertion={Uri.EscapeDataString(assertion)}";

        const string Grant = "grant_type=client_credentials&scope=api.read";
        var issuer = ServerFixture<SqliteTestDatabase>.Issuer;
        switch (@case)
        {
            case "missing-grant-type":
                return Basic(Form("scope=api.read"));
            case "repeated-grant-type":
                return Basic(Form(Grant + "&grant_type=client_credentials"));
            case "repeated-client-id":
                return Form($"{Grant}&client_id=svc-basic&client_id=svc-basic&client_secret={fixture.BasicSecret}");
            case "json-content-type":
                return Basic(Form("""{"grant_type":"client_credentials"}""", "application/json"));
            case "no-content-type":
                var bare = new HttpRequestMessage(HttpMethod.Post, "/connect/token") { Content = new ByteArrayContent(Encoding.ASCII.GetBytes(Grant)) };
                return Basic(bare);
            case "one-megabyte-body":
                return Basic(Form(Grant + "&padding=" + new string('a', 1024 * 1024)));
            case "chunked-one-megabyte-body":
                var chunked = new HttpRequestMessage(HttpMethod.Post, "/connect/token")
                {
                    Content = new StreamContent(new MemoryStream(Encoding.ASCII.GetBytes(Grant + "&padding=" + new string('a', 1024 * 1024)))),
                };
                chunked.Content.Headers.ContentType = new MediaTypeHeaderValue("application/x-www-form-urlencoded");
                chunked.Headers.TransferEncodingChunked = true;
                return Basic(chunked);
            case "invalid-utf8":
                var bytes = Encoding.ASCII.GetBytes(Grant + "&client_id=").Concat(new byte[] { 0xC3, 0x28, 0xFF, 0xFE })
                    .Concat(Encoding.ASCII.GetBytes("&client_secret=%C3%28%FF")).ToArray();
                var invalid = new HttpRequestMessage(HttpMethod.Post, "/connect/token") { Content = new ByteArrayContent(bytes) };
                invalid.Content.Headers.ContentType = new MediaTypeHeaderValue("application/x-www-form-urlencoded");
                return invalid;
            case "unknown-grant-type":
                return Basic(Form("grant_type=urn:example:magic"));
            case "get-method":
                return new HttpRequestMessage(HttpMethod.Get, "/connect/token?" + Grant);
            case "unknown-client":
                return Form($"{Grant}&client_id=nobody&client_secret={fixture.BasicSecret}");
            case "garbage-client-assertion":
                return Form(Assertion(Grant, "not.a.jwt"));
            case "expired-client-assertion":
                return Form(Assertion(Grant, TokenClient.CreateClientAssertion("svc-jwt", fixture.JwtClientKey, issuer, DateTime.UtcNow.AddMinutes(-5))));
            case "client-assertion-wrong-audience":
                return Form(Assertion(Grant, TokenClient.CreateClientAssertion("svc-jwt", fixture.JwtClientKey, "https://elsewhere.example/")));
            case "client-assertion-signed-by-another-key":
                using (var other = System.Security.Cryptography.ECDsa.Create(System.Security.Cryptography.ECCurve.NamedCurves.nistP256))
                {
                    return Form(Assertion(Grant, TokenClient.CreateClientAssertion("svc-jwt", other, issuer)));
                }

            case "secret-and-assertion":
                return Form(Assertion(Grant + $"&client_id=svc-jwt&client_secret={fixture.BasicSecret}",
                    TokenClient.CreateClientAssertion("svc-jwt", fixture.JwtClientKey, issuer)));
            default:
                throw new ArgumentOutOfRangeException(nameof(@case), @case, null);
        }
    }
}
