using System.Net;
using System.Net.Http.Headers;

namespace Identity.Region.Tests.Infrastructure;

/// <summary>A call to the regional API with a bearer token, and what a refused one must look like.</summary>
public static class ApiCalls
{
    public static async Task<HttpResponseMessage> GetOrdersAsync(this HttpClient caller, string token)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "orders");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return await caller.SendAsync(request);
    }

    /// <summary>RFC 6750 §3.1 (RFC 8705 §3 for a binding that does not hold): 401 and <c>error="invalid_token"</c>.</summary>
    public static void AssertInvalidToken(HttpResponseMessage response)
    {
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        var challenge = Assert.Single(response.Headers.WwwAuthenticate);
        Assert.Equal("Bearer", challenge.Scheme);
        Assert.StartsWith("error=\"invalid_token\"", challenge.Parameter, StringComparison.Ordinal);
    }
}
