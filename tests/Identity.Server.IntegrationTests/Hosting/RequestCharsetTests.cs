using System.Net;
using System.Text;
using Identity.Server.IntegrationTests.Infrastructure;

namespace Identity.Server.IntegrationTests.Hosting;

/// <summary>
/// A body declared in a charset the runtime refuses to decode (UTF-7, disabled since .NET 5) is the client's mistake:
/// a 4xx in the endpoint's error format, never the 500 that reading such a form used to throw (found by the bad-input test).
/// </summary>
public sealed class RequestCharsetTests(ServerFixture<SqliteTestDatabase> fixture) : IClassFixture<ServerFixture<SqliteTestDatabase>>
{
    private const string Utf7Form = "application/x-www-form-urlencoded; charset=utf-7";

    [Theory]
    [InlineData("/connect/token")]
    [InlineData("/connect/introspect")]
    [InlineData("/connect/authorize")]
    public async Task ProtocolEndpoint_Utf7Body_Rfc6749InvalidRequest(string path)
    {
        using var request = Post(path, "grant_type=client_credentials&token=x&client_id=web-eu");

        var response = await fixture.Client.SendAsync(request);

        var body = await ResponseAssert.StatusAsync(response, HttpStatusCode.BadRequest);
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal("invalid_request", body.GetProperty("error").GetString());
    }

    [Theory]
    [InlineData("/Account/Login")]
    [InlineData("/Account/PasskeySignIn")]
    public async Task AccountPage_Utf7Body_UnsupportedMediaTypeProblem(string path)
    {
        using var request = Post(path, "Input.Email=a%40b.test&Input.Password=x");

        var response = await fixture.Client.SendAsync(request);

        var body = await ResponseAssert.StatusAsync(response, HttpStatusCode.UnsupportedMediaType);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.Contains("utf-7", body.GetProperty("detail").GetString(), StringComparison.Ordinal);
    }

    private static HttpRequestMessage Post(string path, string form)
    {
        var content = new ByteArrayContent(Encoding.ASCII.GetBytes(form));
        content.Headers.TryAddWithoutValidation("Content-Type", Utf7Form);
        return new HttpRequestMessage(HttpMethod.Post, path) { Content = content };
    }
}
