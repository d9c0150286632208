using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace Identity.Region.Tests;

/// <summary>A misconfigured regional service refuses to start and names the key.</summary>
public sealed class IdentityRegionOptionsTests
{
    private static readonly Dictionary<string, string?> Valid = new()
    {
        ["IdentityRegion:Region"] = "eu",
        ["IdentityRegion:Authority"] = "https://id.example.com/",
        ["IdentityRegion:ClientId"] = "region-eu-sync",
        ["IdentityRegion:ClientSecret"] = "from-the-environment",
        ["IdentityRegion:ReplicaConnectionString"] = "Data Source=:memory:",
    };

    [Fact]
    public void Options_Complete_AreValid()
    {
        var options = Resolve(Valid);

        Assert.Equal(("eu", 200, true), (options.Region, options.PageSize, options.ResyncOnStart));
    }

    [Theory]
    [InlineData("IdentityRegion:Region", null, "IdentityRegion:Region is required")]
    [InlineData("IdentityRegion:Region", "EU!", "IdentityRegion:Region must be")]
    [InlineData("IdentityRegion:ClientSecret", null, "IdentityRegion:ClientSecret is required")]
    [InlineData("IdentityRegion:Authority", "http://id.example.com/", "IdentityRegion:Authority must use https")]
    [InlineData("IdentityRegion:PageSize", "0", "IdentityRegion:PageSize must be")]
    public void Options_Invalid_FailNamingTheKey(string key, string? value, string message)
    {
        var settings = new Dictionary<string, string?>(Valid) { [key] = value };

        var error = Assert.Throws<OptionsValidationException>(() => Resolve(settings));

        Assert.Contains(message, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Options_LoopbackHttpAuthority_IsAllowed()
    {
        var options = Resolve(new Dictionary<string, string?>(Valid) { ["IdentityRegion:Authority"] = "http://127.0.0.1:5080/" });

        Assert.True(AuthorityUrl.IsLoopbackHttp(options.Authority));
    }

    private static IdentityRegionOptions Resolve(Dictionary<string, string?> settings)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Configuration.AddInMemoryCollection(settings);
        builder.AddIdentityRegion();
        using var services = builder.Services.BuildServiceProvider();
        return services.GetRequiredService<IOptions<IdentityRegionOptions>>().Value;
    }
}
