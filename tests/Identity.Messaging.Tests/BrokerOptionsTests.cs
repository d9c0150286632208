using MassTransit;
using Microsoft.Extensions.Options;

namespace Identity.Messaging.Tests;

/// <summary>Configuration mistakes are refused before any connection, naming the key. No broker needed.</summary>
public sealed class BrokerOptionsTests
{
    [Fact]
    public void Validate_EmptyOptions_NamesEveryMissingKey()
    {
        var result = new BrokerOptionsValidator().Validate(Options.DefaultName, new BrokerOptions());

        Assert.True(result.Failed);
        Assert.Contains(result.Failures!, f => f.StartsWith("Broker:Host", StringComparison.Ordinal));
        Assert.Contains(result.Failures!, f => f.StartsWith("Broker:CaCertificatePath", StringComparison.Ordinal));
        Assert.Contains(result.Failures!, f => f.StartsWith("Broker:ClientCertificatePath", StringComparison.Ordinal));
    }

    [Fact]
    public void Validate_MissingCertificateFileAndBadPort_AreRefused()
    {
        var options = new BrokerOptions
        {
            Host = "localhost",
            Port = 0,
            CaCertificatePath = "/nonexistent/ca.pem",
            ClientCertificatePath = "/nonexistent/identity.pfx",
        };

        var result = new BrokerOptionsValidator().Validate(Options.DefaultName, options);

        Assert.Contains(result.Failures!, f => f.StartsWith("Broker:Port", StringComparison.Ordinal));
        Assert.Contains(result.Failures!, f => f.Contains("'/nonexistent/ca.pem' not found", StringComparison.Ordinal));
        Assert.Contains(result.Failures!, f => f.Contains("'/nonexistent/identity.pfx' not found", StringComparison.Ordinal));
    }

    [Fact]
    public void UseIdentityBroker_InvalidOptions_Throws()
    {
        Assert.Throws<OptionsValidationException>(() =>
            Bus.Factory.CreateUsingRabbitMq(cfg => cfg.UseIdentityBroker(new BrokerOptions())));
    }

    [Theory]
    [InlineData("eu", "identity.region.eu")]
    [InlineData("ap-south", "identity.region.ap-south")]
    public void ExchangeAndQueueFor_Region_AreTheRegionsNames(string region, string expected)
    {
        Assert.Equal(expected, RegionTopology.ExchangeFor(region));
        Assert.Equal(expected, RegionTopology.QueueFor(region));
        Assert.Equal(new Uri("exchange:" + expected), RegionTopology.SendAddressFor(region));
    }

    [Theory]
    [InlineData("EU")]
    [InlineData("eu.*")]
    [InlineData("")]
    public void ExchangeFor_InvalidRegion_Throws(string region)
    {
        Assert.Throws<ArgumentException>(() => RegionTopology.ExchangeFor(region));
    }
}
